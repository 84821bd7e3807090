import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { createClient, privateKeyJwt } from "../../../sdk/index.js";
import { adminCaller, grantedSecret, registerWorkload } from "../../support/sdk-setup.js";
import { startBrokerServer } from "../issuance/broker-server.js";
import { describeBrokerCode, formatLoad } from "../run-facts.js";
import { waitForIdleMachine } from "../system-load.js";
import { measureCachedToken } from "./cached-token.js";
import { type ClientLoadResult, measureClientLoad } from "./client-load.js";

const USAGE = `Usage: npm run bench:sdk -- [options]

  --clients N        SDK clients, each holding one credential (default 1000)
  --ttl SECONDS      credential TTL the clients ask for (default 300)
  --minutes M        simulated minutes of steady load (default 60)
  --calls N          cached getAccessToken calls per round (default 1000000)
  --rounds N         rounds of the cached-call measurement (default 5)
  --idle-wait N      wait up to N seconds for an idle machine before each measurement (default 0)

The broker runs on PGlite, or on PostgreSQL when DATABASE_URL is set.`;

/** Cached getAccessToken target, in nanoseconds. */
const CACHED_TARGET_NS = 5_000;
/** The secret's max TTL: a day, so that the leases stay renewable for the whole run. */
const SECRET_MAX_TTL_SECONDS = 86_400;

/**
 * SDK benchmark: the cost of a cached getAccessToken call against a bare awaited Map
 * lookup, and the requests per second that many SDK clients holding one credential each
 * send to a broker, against one renewal per lease per refresh period.
 */
async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: "string", default: "1000" },
      ttl: { type: "string", default: "300" },
      minutes: { type: "string", default: "60" },
      calls: { type: "string", default: "1000000" },
      rounds: { type: "string", default: "5" },
      "idle-wait": { type: "string", default: "0" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const numbers = { clients: Number(values.clients), ttl: Number(values.ttl), minutes: Number(values.minutes), calls: Number(values.calls), rounds: Number(values.rounds) };
  const invalid = Object.entries(numbers).find(([, value]) => !Number.isInteger(value) || value < 1);
  const idleWait = Number(values["idle-wait"]);
  if (invalid || !Number.isInteger(idleWait) || idleWait < 0) {
    console.error(`bench:sdk: ${invalid ? `--${invalid[0]} must be a positive integer` : "--idle-wait must be a whole number of seconds"}\n\n${USAGE}`);
    return 2;
  }

  const databaseUrl = process.env["DATABASE_URL"];
  console.log(`SDK benchmark: ${cpus().length} CPUs, Node.js ${process.version}, broker on ${databaseUrl ? "PostgreSQL" : "PGlite"}, ${describeBrokerCode()}`);
  const broker = await startBrokerServer(databaseUrl);
  try {
    const admin = adminCaller(broker.address, broker.adminToken);
    const workload = await registerWorkload(admin);
    const secret = await grantedSecret(admin, workload.accountId, { default_ttl: numbers.ttl, max_ttl: SECRET_MAX_TTL_SECONDS });

    const client = createClient({ broker: broker.address, identity: privateKeyJwt({ clientId: workload.accountId, key: workload.privateJwk as never }) });
    await waitForIdle(idleWait);
    const cached = await measureCachedToken(client, numbers.calls, numbers.rounds);
    await client.close();
    console.log(`\nCached getAccessToken, median of ${cached.rounds} rounds of ${cached.calls} awaited calls\n`);
    console.log("| call | ns per call | ratio to baseline |\n|---|---:|---:|");
    console.log(`| baseline: awaited Promise.resolve(map.get(key)) | ${cached.baselineNs.toFixed(0)} | 1.00 |`);
    console.log(`| client.getAccessToken({ scope }) from the cache | ${cached.sdkNs.toFixed(0)} | ${(cached.sdkNs / cached.baselineNs).toFixed(2)} |`);
    console.log(`\ntarget under ${CACHED_TARGET_NS} ns: ${cached.sdkNs < CACHED_TARGET_NS ? "met" : "NOT met"}`);

    await waitForIdle(idleWait);
    console.error(`client load: ${numbers.clients} clients, ${numbers.minutes} simulated minutes`);
    const load = await measureClientLoad(broker.address, workload, secret.name, { clients: numbers.clients, ttlSeconds: numbers.ttl, simulatedSeconds: numbers.minutes * 60 });
    console.log(loadReport(load));
    console.log(`\nload average at end (1, 5, 15 min): ${formatLoad()}`);
    return 0;
  } finally {
    await broker.cleanup();
  }
}

async function waitForIdle(maxSeconds: number): Promise<void> {
  if (maxSeconds > 0 && !(await waitForIdleMachine(maxSeconds))) {
    console.error(`bench:sdk: the machine did not go idle within ${maxSeconds} s; measuring anyway`);
  }
}

function loadReport(load: ClientLoadResult): string {
  const perSecond = (count: number) => (count / load.simulatedSeconds).toFixed(2);
  const total = load.renewals + load.tokens + load.issues + load.other;
  return [
    `\nBroker load from ${load.clients} SDK clients, each holding one credential with a ${load.ttlSeconds} s TTL, over ${load.simulatedSeconds} simulated seconds`,
    "",
    "| requests | count | per second |",
    "|---|---:|---:|",
    `| lease renewals | ${load.renewals} | ${perSecond(load.renewals)} |`,
    `| access-token requests | ${load.tokens} | ${perSecond(load.tokens)} |`,
    `| credential issues | ${load.issues} | ${perSecond(load.issues)} |`,
    `| other | ${load.other} | ${perSecond(load.other)} |`,
    `| all | ${total} | ${perSecond(total)} |`,
    "",
    `theoretical minimum: one renewal per lease per refresh period = ${load.minimumPerSecond.toFixed(2)}/s`,
    `renewals / minimum: ${(load.renewals / load.simulatedSeconds / load.minimumPerSecond).toFixed(2)}; all requests / minimum: ${(total / load.simulatedSeconds / load.minimumPerSecond).toFixed(2)}`,
    `the broker served them in ${load.wallSeconds.toFixed(1)} s of wall-clock time`,
  ].join("\n");
}

process.exitCode = await main(process.argv.slice(2));
