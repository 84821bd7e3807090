import { freemem, totalmem } from "node:os";
import { cpuProfileTables } from "../issuance/issuance-report.js";
import { coreCount } from "../system-load.js";
import { type CredentialOptions, HelpRequested, parseCredentialOptions, USAGE } from "./credential-options.js";
import { dynamicTable, localTable, profileTable, verdicts } from "./credential-report.js";
import { type BackendResult, runBackendSuite } from "./credential-suite.js";
import { CREDENTIAL_TTL_SECONDS } from "./local-pair.js";
import { describeBrokerCode, formatLoad } from "../run-facts.js";

/**
 * Leased-credential issuance benchmark: POST /v1/credentials of a broker process, for a
 * local static secret against POST /v1/token of the same broker, and for a dynamic
 * PostgreSQL secret against CREATE ROLE and GRANT sent straight to the same server.
 * Progress goes to standard error, the report to standard output. Exits with 1 when any
 * request failed or the broker's roles did not match its responses.
 */
async function main(argv: string[]): Promise<number> {
  let options: CredentialOptions;
  try {
    options = parseCredentialOptions(argv, process.env);
  } catch (error) {
    if (error instanceof HelpRequested) {
      console.log(USAGE);
      return 0;
    }
    console.error(`bench:credentials: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }

  const startedAt = performance.now();
  console.log(describeRun(options));
  if (options.dynamicSkipReason) {
    console.log(`dynamic PostgreSQL credentials: SKIPPED, because ${options.dynamicSkipReason}`);
  }
  const results: BackendResult[] = [];
  for (const backend of options.backends) {
    console.error(`${backend}:`);
    results.push(await runBackendSuite(backend, options));
  }

  console.log(`\nload average at end (1, 5, 15 min): ${formatLoad()}; total time ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
  for (const result of results) {
    console.log(`${result.backend}: broker database ${result.databaseVersion}`);
    if (result.roleServer) {
      console.log(`${result.backend}: dynamic roles on ${result.roleServer.version}, password_encryption=${result.roleServer.passwordEncryption}`);
    }
  }
  if (results.some((result) => result.local.length > 0)) {
    console.log(`\nLocal static secret: POST /v1/credentials against POST /v1/token, closed loop\n\n${localTable(results)}`);
  }
  if (results.some((result) => result.dynamic)) {
    console.log(`\nDynamic PostgreSQL secret: POST /v1/credentials (one new role each) against CREATE ROLE + GRANT sent straight to the server\n\n${dynamicTable(results)}`);
  }
  console.log(`\nCPU use and PostgreSQL backend states of each median run\n\n${profileTable(results)}`);
  for (const result of results) {
    if (result.cpuProfile) {
      console.log(`\n${cpuProfileTables(result.backend, result.cpuProfile)}`);
    }
  }
  console.log(`\n${verdicts(results).join("\n")}`);
  return reportProblems(results) ? 1 : 0;
}

/** Prints failed requests, role-count mismatches and broker errors, and returns whether any request failed or any count was off. */
function reportProblems(results: BackendResult[]): boolean {
  let failed = false;
  for (const result of results) {
    const runs = [...result.local, ...(result.dynamic?.cases ?? [])].flatMap((pair) => Object.values(pair.runs).flat());
    const failures = runs.reduce((sum, run) => sum + run.loop.failed, 0);
    if (failures > 0) {
      failed = true;
      const messages = [...new Set(runs.flatMap((run) => run.loop.failureMessages))];
      console.log(`\n${result.backend}: ${failures} requests failed: ${messages.join("; ")}`);
    }
    for (const mismatch of result.dynamic?.roleCountMismatches ?? []) {
      failed = true;
      console.log(`\n${result.backend}: role count mismatch after the dynamic run at ${mismatch}`);
    }
    if (result.dynamic) {
      console.log(`\n${result.backend}: the benchmark dropped the ${result.dynamic.rolesDropped} roles it created during the dynamic runs`);
    }
    if (result.brokerErrors.length > 0) {
      console.log(`\n${result.backend}: the broker logged ${result.brokerErrors.length} lines at level error or fatal. The first was: ${result.brokerErrors[0]}`);
    }
  }
  return failed;
}

function describeRun(options: CredentialOptions): string {
  const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1);
  return [
    `leased-credential issuance benchmark, ${new Date().toISOString()}`,
    `machine: ${coreCount()} cores, ${gib(totalmem())} GiB memory (${gib(freemem())} GiB free), Node.js ${process.version}, ${process.platform}/${process.arch}`,
    // Other work on the machine skews every figure. The load average and the "other cores" column show whether there was any.
    `load average at start (1, 5, 15 min): ${formatLoad()}`,
    `broker code: ${describeBrokerCode()}`,
    `backends: ${options.backends.join(", ")}; cases: ${options.cases.join(", ")}`,
    `local pair: concurrency ${options.concurrencies.join(", ")}; dynamic pair: ${describeDynamicPair(options)}`,
    `${options.rounds} rounds of ${options.seconds} s per side after ${options.warmupSeconds} s warm-up, sides in alternating order; credential TTL ${CREDENTIAL_TTL_SECONDS} s`,
    "credential requests: one access token per request loop, obtained before each run and outside the measured time",
    options.idleWaitSeconds > 0 ? `idle wait: up to ${options.idleWaitSeconds} s before each timed run` : "idle wait: off",
  ].join("\n");
}

function describeDynamicPair(options: CredentialOptions): string {
  if (!options.dynamicBackend) {
    return "skipped";
  }
  return `concurrency ${options.dynamicConcurrencies.join(", ")}, broker on ${options.dynamicBackend}`;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  console.error("bench:credentials: failed:", error);
  process.exitCode = 1;
}
