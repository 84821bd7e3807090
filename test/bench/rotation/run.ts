import { freemem, totalmem } from "node:os";
import postgres from "postgres";
import { ROTATION_CONCURRENCY, ROTATION_ENQUEUE_BATCH } from "../../../broker/rotation/rotation-scheduler.js";
import { coreCount } from "../system-load.js";
import { measurePgliteThroughput } from "./pglite-throughput.js";
import { measurePostgresThroughput } from "./postgres-throughput.js";
import { HelpRequested, parseRotationOptions, type RotationOptions, USAGE } from "./rotation-options.js";
import { interferenceWarning, lockWaitText, planText, throughputDetailTable, timelineTable, throughputSummaryTable, tickTable, tickVerdicts } from "./rotation-report.js";
import type { ThroughputCase } from "./throughput-round.js";
import { measureTickCost, type TickCase } from "./tick-cost.js";
import { describeBrokerCode, formatLoad } from "../run-facts.js";

/** PostgreSQL settings that decide what a commit costs, printed with the results. */
const SERVER_SETTINGS = ["fsync", "synchronous_commit", "wal_sync_method", "shared_buffers", "max_connections"];

/**
 * Rotation benchmark. It measures rotations per second of the local adapter when many
 * secrets fall due at once, against bare version-flip transactions: with 1 and 3
 * `serve` processes on PostgreSQL, and one in-process scheduler on PGlite. It also
 * measures the cost of a scheduler tick when many secrets exist and none is due,
 * against a `select 1` round trip. Progress goes to standard error, the report to
 * standard output. Exits with 1 when a rotation did not end as expected or a tick
 * found work.
 */
async function main(argv: string[]): Promise<number> {
  let options: RotationOptions;
  try {
    options = parseRotationOptions(argv, process.env);
  } catch (error) {
    if (error instanceof HelpRequested) {
      console.log(USAGE);
      return 0;
    }
    console.error(`bench:rotation: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }

  const startedAt = performance.now();
  console.log(await describeRun(options));
  const throughput: ThroughputCase[] = [];
  const ticks: TickCase[] = [];
  if (options.cases.includes("throughput")) {
    if (options.backends.includes("postgres")) {
      for (const processes of options.processCounts) {
        console.error(`throughput, postgres, ${processes} processes:`);
        throughput.push(await measurePostgresThroughput(options.databaseUrl!, processes, options));
      }
    }
    if (options.backends.includes("pglite")) {
      console.error("throughput, pglite, in-process:");
      throughput.push(await measurePgliteThroughput(options));
    }
  }
  if (options.cases.includes("tick")) {
    for (const backend of options.backends) {
      console.error(`tick cost, ${backend}:`);
      ticks.push(await measureTickCost(backend, options));
    }
  }

  console.log(`\nload average at end (1, 5, 15 min): ${formatLoad()}; total time ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
  if (throughput.length > 0) {
    console.log(`\nRotations per second, median of ${options.rounds} rounds\n\n${throughputSummaryTable(throughput)}`);
    console.log(`\nEvery round and side\n\n${throughputDetailTable(throughput)}`);
    console.log(`\nPhases of the engine's rotations, medians per round, from the rotation records\n\n${timelineTable(throughput)}`);
    const lockWaits = lockWaitText(throughput);
    if (lockWaits) {
      console.log(`\nStatements that waited for a lock during the engine's runs (average number of backends waiting)\n\n${lockWaits}`);
    }
    for (const entry of throughput) {
      const rate = entry.created.secrets / entry.created.seconds;
      console.log(`\n${entry.backend}, ${entry.processes} processes: ${entry.created.secrets} secrets created in ${entry.created.seconds.toFixed(1)} s (${Math.round(rate)}/s)`);
    }
    const warning = interferenceWarning(throughput);
    if (warning) {
      console.log(`\n${warning}`);
    }
  }
  if (ticks.length > 0) {
    console.log(`\nScheduler tick with no secret due\n\n${tickTable(ticks)}`);
    for (const entry of ticks) {
      console.log(`\n${entry.backend}: ${entry.secrets} secrets created with createSecret in ${entry.populateSeconds.toFixed(1)} s`);
    }
    console.log(`\n${planText(ticks)}`);
    const verdicts = tickVerdicts(ticks);
    if (verdicts.length > 0) {
      console.log(`\n${verdicts.join("\n")}`);
    }
  }
  return reportFailures(throughput, ticks) ? 1 : 0;
}

/** Prints every problem and broker warning, and returns true when any problem was found. */
function reportFailures(throughput: ThroughputCase[], ticks: TickCase[]): boolean {
  let failed = false;
  for (const entry of throughput) {
    if (entry.problems.length > 0) {
      failed = true;
      console.log(`\n${entry.backend}, ${entry.processes} processes: rotations did not end as expected:\n  ${entry.problems.join("\n  ")}`);
    }
    if (entry.brokerWarnings.length > 0) {
      console.log(`\n${entry.backend}, ${entry.processes} processes: the brokers logged ${entry.brokerWarnings.length} warnings, the first of them: ${entry.brokerWarnings[0]}`);
    }
  }
  for (const entry of ticks) {
    if (entry.problems.length > 0) {
      failed = true;
      console.log(`\n${entry.backend}: ticks found work although none was due:\n  ${entry.problems.slice(0, 5).join("\n  ")}`);
    }
  }
  return failed;
}

async function describeRun(options: RotationOptions): Promise<string> {
  const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1);
  const lines = [
    `rotation benchmark, ${new Date().toISOString()}`,
    `machine: ${coreCount()} cores, ${gib(totalmem())} GiB memory (${gib(freemem())} GiB free), Node.js ${process.version}, ${process.platform}/${process.arch}`,
    // Other work on the machine skews every figure. The load average and the "other cores" column show whether there was any.
    `load average at start (1, 5, 15 min): ${formatLoad()}`,
    `broker code: ${describeBrokerCode()}`,
    `backends: ${options.backends.join(", ")}; cases: ${options.cases.join(", ")}`,
    `throughput: ${options.secrets} secrets due at once per round, ${options.rounds} rounds, processes ${options.processCounts.join(", ")}; ` +
      `${ROTATION_CONCURRENCY} rotations in flight per process, up to ${ROTATION_ENQUEUE_BATCH} started per tick; rotation tick every second`,
    `tick: ${options.tickSecrets} secrets none due, ${options.warmupTicks} warm-up and ${options.ticks} timed ticks per series, then ${options.historyRotations} completed rotation rows added`,
    options.idleWaitSeconds > 0 ? `idle wait: up to ${options.idleWaitSeconds} s before each timed run` : "idle wait: off",
  ];
  if (options.databaseUrl && options.backends.includes("postgres")) {
    lines.push(await describeServer(options.databaseUrl));
  }
  return lines.join("\n");
}

async function describeServer(url: string): Promise<string> {
  const session = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const [version] = await session<{ version: string }[]>`select version()`;
    const settings = await session<{ name: string; setting: string; unit: string | null }[]>`
      select name, setting, unit from pg_settings where name in ${session(SERVER_SETTINGS)} order by name`;
    const described = settings.map((row) => `${row.name}=${row.setting}${row.unit ? ` ${row.unit}` : ""}`).join(", ");
    return `postgres: ${version?.version ?? "unknown"} at ${new URL(url).host}; ${described}`;
  } finally {
    await session.end({ timeout: 5 });
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  console.error("bench:rotation: failed:", error);
  process.exitCode = 1;
}
