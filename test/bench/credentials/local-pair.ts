import type { AssertionPool } from "../issuance/assertion-pool.js";
import type { BrokerServer } from "../issuance/broker-server.js";
import { createTokenClient } from "../issuance/token-client.js";
import { createLocalSecret } from "./bench-catalogue.js";
import { checkFirstCredential, createCredentialClient, requestAccessToken } from "./credential-client.js";
import type { CredentialOptions } from "./credential-options.js";
import { type PairCase, type ProfileTarget, requireOk, runRounds, type Side, type SideRun, timedRun } from "./paired-runs.js";

/**
 * Lease TTL that every credential request sets, in seconds. It outlasts any run, so no
 * lease expires, and no expiry sweep runs, while the benchmark measures.
 */
export const CREDENTIAL_TTL_SECONDS = 900;
/**
 * Token throughput assumed before the first token run, to size the pool of pre-signed
 * assertions, in tokens per second. Later runs size it from the best earlier run. A pool
 * that runs dry makes the benchmark sign on demand, which the report counts.
 */
const INITIAL_TOKEN_RATE_GUESS = 2000;
/** Headroom of the assertion pool over the expected number of token requests. */
const POOL_HEADROOM = 1.5;

/**
 * Measures the local pair at every concurrency: POST /v1/token (side `token`) against
 * POST /v1/credentials for a local static secret (side `local`), each alone.
 *
 * The credential side obtains one access token per request loop before each run, outside
 * the measured time, and every request presents a token that is already live. A token
 * per request would add a full token issuance to every credential request, so the ratio
 * could never pass 0.5 and would measure the token endpoint twice. Workloads hold on to a
 * token for its TTL (15 minutes by default) and request many credentials with it.
 */
export async function measureLocalPair(
  broker: BrokerServer,
  pool: AssertionPool,
  accountId: string,
  options: CredentialOptions,
  target: ProfileTarget,
  label: string,
): Promise<PairCase[]> {
  const wantsToken = options.cases.includes("token");
  const secretName = options.cases.includes("local") ? await createLocalSecret(broker.address, broker.adminToken, accountId) : undefined;
  if (secretName) {
    const accessToken = await requestAccessToken(broker.address, await pool.take());
    await checkFirstCredential(broker.address, accessToken, secretName, CREDENTIAL_TTL_SECONDS, ["value"]);
  }

  const tokenRuns: SideRun[] = [];
  const cases: PairCase[] = [];
  for (const concurrency of options.concurrencies) {
    const sides: Side[] = [];
    if (wantsToken) {
      sides.push({
        name: "token",
        run: async () => {
          const run = await measureTokenRun(broker, pool, concurrency, options, target, expectedTokenRate(tokenRuns));
          tokenRuns.push(run);
          return run;
        },
      });
    }
    if (secretName) {
      sides.push({ name: "local", run: () => measureCredentialRun(broker, pool, secretName, concurrency, options, target) });
    }
    cases.push(await runRounds(concurrency, sides, options.rounds, label));
  }
  return cases;
}

/** Measures POST /v1/token with pre-signed client assertions, as `npm run bench:issuance` does. */
async function measureTokenRun(
  broker: BrokerServer,
  pool: AssertionPool,
  concurrency: number,
  options: CredentialOptions,
  target: ProfileTarget,
  rateGuess: number,
): Promise<SideRun> {
  const client = createTokenClient(broker.address, concurrency);
  let onDemandBefore = pool.signedOnDemand;
  try {
    const { loop, profile } = await timedRun(options, {
      label: `token c=${concurrency}`,
      concurrency,
      target,
      prepare: () => pool.fill(Math.ceil(rateGuess * (options.warmupSeconds + options.seconds) * POOL_HEADROOM) + concurrency),
      operation: async () => requireOk("POST /v1/token", await client.send(await pool.take())),
      onMeasuredStart: () => (onDemandBefore = pool.signedOnDemand),
    });
    return { side: "token", concurrency, loop, profile, signedOnDemand: pool.signedOnDemand - onDemandBefore };
  } finally {
    client.close();
  }
}

/**
 * Measures POST /v1/credentials for `secretName`. Requests present the `concurrency`
 * access tokens in turn, so each token serves about one request at a time.
 */
async function measureCredentialRun(
  broker: BrokerServer,
  pool: AssertionPool,
  secretName: string,
  concurrency: number,
  options: CredentialOptions,
  target: ProfileTarget,
): Promise<SideRun> {
  const accessTokens: string[] = [];
  for (let index = 0; index < concurrency; index += 1) {
    accessTokens.push(await requestAccessToken(broker.address, await pool.take()));
  }

  const client = createCredentialClient(broker.address, secretName, CREDENTIAL_TTL_SECONDS, concurrency);
  let next = 0;
  try {
    const { loop, profile } = await timedRun(options, {
      label: `local c=${concurrency}`,
      concurrency,
      target,
      operation: async () => {
        const accessToken = accessTokens[next % accessTokens.length]!;
        next += 1;
        return requireOk("POST /v1/credentials", await client.send(accessToken));
      },
    });
    return { side: "local", concurrency, loop, profile, signedOnDemand: 0 };
  } finally {
    client.close();
  }
}

function expectedTokenRate(runs: SideRun[]): number {
  return runs.length === 0 ? INITIAL_TOKEN_RATE_GUESS : Math.max(...runs.map((run) => run.loop.perSecond));
}
