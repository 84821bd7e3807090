import { freemem, totalmem } from "node:os";
import { coreCount } from "../system-load.js";
import { type BackendResult, HALF_LOAD_FRACTION, runBackendSuite } from "./backend-suite.js";
import { HelpRequested, type IssuanceOptions, parseIssuanceOptions, USAGE } from "./issuance-options.js";
import {
  brokerPathTable,
  cpuProfileTables,
  halfLoadTable,
  halfLoadTail,
  memorySeries,
  memoryTable,
  profileTable,
  targetVerdicts,
  throughputTable,
} from "./issuance-report.js";
import { describeBrokerCode, formatLoad } from "../run-facts.js";

/**
 * Access-token issuance benchmark: POST /v1/token of a broker process driven over
 * keep-alive HTTP, against an in-process baseline with the same concurrency, on PGlite and
 * on PostgreSQL, plus a long run that samples the broker's RSS. Progress goes to standard
 * error, the report to standard output. Exits with 1 when any request failed.
 */
async function main(argv: string[]): Promise<number> {
  let options: IssuanceOptions;
  try {
    options = parseIssuanceOptions(argv, process.env);
  } catch (error) {
    if (error instanceof HelpRequested) {
      console.log(USAGE);
      return 0;
    }
    console.error(`bench:issuance: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }

  const startedAt = performance.now();
  console.log(describeRun(options));
  const results: BackendResult[] = [];
  for (const backend of options.backends) {
    console.error(`${backend}:`);
    results.push(await runBackendSuite(backend, options));
  }

  console.log(`\nload average at end (1, 5, 15 min): ${formatLoad()}; total time ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
  for (const result of results) {
    console.log(`${result.backend}: ${result.serverVersion}`);
  }
  console.log(`\nThroughput and latency, closed loop\n\n${throughputTable(results)}`);
  console.log(`\nOpen loop at ${HALF_LOAD_FRACTION * 100}% of the peak throughput\n\n${halfLoadTable(results)}\n`);
  for (const result of results) {
    console.log(halfLoadTail(result));
  }
  console.log(`\nIn-process broker path (verifyClientAssertion, then issueAccessToken), no HTTP\n\n${brokerPathTable(results)}`);
  console.log(`\nCPU use and PostgreSQL backend states per run\n\n${profileTable(results)}`);
  const memoryResults = results.filter((result) => result.memory !== undefined);
  if (memoryResults.length > 0) {
    console.log(`\nBroker RSS over the long run\n\n${memoryTable(memoryResults)}`);
    for (const result of memoryResults) {
      console.log(`\n${result.backend}: ${memorySeries(result.memory!)}`);
    }
  }
  for (const result of results) {
    if (result.cpuProfile) {
      console.log(`\n${cpuProfileTables(result.backend, result.cpuProfile)}`);
    }
  }
  console.log(`\n${targetVerdicts(results).join("\n")}`);

  let failed = false;
  for (const result of results) {
    const runs = [...result.http, result.halfLoad, ...result.brokerPath, ...result.baseline];
    const failures = runs.reduce((sum, run) => sum + run.loop.failed, 0) + (result.memory?.loop.failed ?? 0);
    const messages = [...new Set([...runs.map((run) => run.loop), ...(result.memory ? [result.memory.loop] : [])].flatMap((loop) => loop.failureMessages))];
    if (failures > 0) {
      failed = true;
      console.log(`\n${result.backend}: ${failures} requests failed: ${messages.join("; ")}`);
    }
    if (result.brokerErrors.length > 0) {
      console.log(`\n${result.backend}: the broker logged ${result.brokerErrors.length} lines at level error or fatal. The first was: ${result.brokerErrors[0]}`);
    }
  }
  return failed ? 1 : 0;
}

function describeRun(options: IssuanceOptions): string {
  const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1);
  return [
    `access-token issuance benchmark, ${new Date().toISOString()}`,
    `machine: ${coreCount()} cores, ${gib(totalmem())} GiB memory (${gib(freemem())} GiB free), Node.js ${process.version}, ${process.platform}/${process.arch}`,
    // Other work on the machine skews every figure; the load average and the "other cores" column show whether there was any.
    `load average at start (1, 5, 15 min): ${formatLoad()}`,
    `broker code: ${describeBrokerCode()}`,
    `backends: ${options.backends.join(", ")}; concurrency ${options.concurrencies.join(", ")}; ${options.seconds} s per case after ${options.warmupSeconds} s warm-up; open loop ${options.halfLoadSeconds} s`,
    options.memoryBackend
      ? `long run: ${options.memoryBackend}, up to ${options.memoryTokens} tokens or ${options.memorySeconds} s`
      : "long run: off",
    options.idleWaitSeconds > 0 ? `idle wait: up to ${options.idleWaitSeconds} s before each timed run` : "idle wait: off",
    "client assertions: signed before each timed run (ES256, new jti each); the 'signed on demand' column counts any signed during a run",
  ].join("\n");
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  console.error("bench:issuance: failed:", error);
  process.exitCode = 1;
}
