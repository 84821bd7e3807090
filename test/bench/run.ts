import { freemem, loadavg, totalmem } from "node:os";
import { AuditChainer } from "../../broker/audit/audit-chainer.js";
import { verifyAuditChain } from "../../broker/audit/audit-verify.js";
import { type AuditDeps, recordAuditEvents } from "../../broker/audit/audit-writer.js";
import { systemClock } from "../../broker/config/clock.js";
import { createLogger } from "../../broker/logging/logger.js";
import { createBaselineTable, createBaselineWriter } from "./baseline-table.js";
import { type BenchDatabase, openPgliteBenchDatabase, openPostgresBenchDatabase } from "./bench-database.js";
import { BENCH_CONTEXT, benchEvent } from "./bench-event.js";
import { type BackendKind, type BenchOptions, HelpRequested, parseBenchOptions, USAGE } from "./bench-options.js";
import { type CaseResult, detailTable, interferenceWarning, summaryTable, targetVerdict } from "./report.js";
import { coreCount, waitForIdleMachine } from "./system-load.js";
import { medianRun, otherCoresOf, runWriters, SKEWED_OTHER_CORES, type WriteEvent, type WriterRun } from "./writers.js";

/** One side of a case: how a writer writes an event, and what must finish before the run's clock stops. */
interface Side {
  write: WriteEvent;
  settle?: () => Promise<void>;
}

/** Attempts per run when --idle-wait is on: a run that other processes slowed down is repeated. */
const MAX_ATTEMPTS = 3;

/**
 * Audit append benchmark: events per second of the audited writer against plain INSERTs
 * into a table of the same shape, at each writer count, on PGlite and on PostgreSQL. The
 * audited writer calls recordAuditEvents with one event per transaction, and the chainer
 * links the events after commit. A run ends once the chainer has linked every event. After the runs it verifies
 * the chain, so a run also shows that concurrent appends keep it valid. Progress goes to
 * standard error, the result tables to standard output. Exits with 1 when the chain does
 * not verify or a run fails.
 */
async function main(argv: string[]): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseBenchOptions(argv, process.env);
  } catch (error) {
    if (error instanceof HelpRequested) {
      console.log(USAGE);
      return 0;
    }
    console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }

  console.log(describeMachine(options));
  const results: CaseResult[] = [];
  let chainsValid = true;
  for (const backend of options.backends) {
    const database = await openBackend(backend, options);
    try {
      console.log(`\n${backend}: ${database.serverVersion}; ${database.location}`);
      const outcome = await benchBackend(database, options);
      results.push(...outcome.results);
      chainsValid &&= outcome.chainValid;
    } finally {
      await database.close();
    }
  }

  console.log(`\n${summaryTable(results)}\n\n${detailTable(results)}`);
  for (const line of [targetVerdict(results), interferenceWarning(results)]) {
    if (line) {
      console.log(`\n${line}`);
    }
  }
  return chainsValid ? 0 : 1;
}

function openBackend(backend: BackendKind, options: BenchOptions): Promise<BenchDatabase> {
  if (backend === "pglite") {
    return openPgliteBenchDatabase();
  }
  // One connection per writer, so that no writer waits for a free connection.
  return openPostgresBenchDatabase(options.databaseUrl!, Math.max(...options.writerCounts));
}

async function benchBackend(database: BenchDatabase, options: BenchOptions): Promise<{ results: CaseResult[]; chainValid: boolean }> {
  await createBaselineTable(database.db);
  const baselineWrite = createBaselineWriter(database.db, systemClock, BENCH_CONTEXT);
  let appended = 0;
  const chainer = new AuditChainer({ db: database.db, log: createLogger({ level: "warn", destination: process.stderr }) });
  const deps: AuditDeps = {
    db: database.db,
    clock: systemClock,
    onAppended: (count) => {
      appended += count;
      chainer.wake();
    },
  };

  const sides: Record<"baseline" | "chained", Side> = {
    baseline: { write: (writer, count) => baselineWrite(benchEvent(writer, count)) },
    // The chained side's time runs until the chainer has linked every event it wrote.
    chained: { write: (writer, count) => recordAuditEvents(deps, BENCH_CONTEXT, [benchEvent(writer, count)]), settle: () => chainer.flush() },
  };

  const results: CaseResult[] = [];
  for (const writers of options.writerCounts) {
    const runs: Record<"baseline" | "chained", WriterRun[]> = { baseline: [], chained: [] };
    for (let round = 0; round < options.rounds; round += 1) {
      // Alternate which side goes first, so that neither always runs on the warmer server.
      const order = round % 2 === 0 ? (["baseline", "chained"] as const) : (["chained", "baseline"] as const);
      for (const side of order) {
        const label = `${database.kind} writers=${writers} round=${round + 1} ${side}`;
        const run = await measuredRun(database, writers, sides[side], options, label);
        runs[side].push(run);
        console.error(`  ${label}: ${Math.round(run.eventsPerSecond)} events/s`);
      }
    }
    results.push({
      backend: database.kind,
      writers,
      baseline: runs.baseline,
      chained: runs.chained,
      baselineMedian: medianRun(runs.baseline),
      chainedMedian: medianRun(runs.chained),
    });
  }

  const verification = await verifyAuditChain(database.db);
  const chainValid = verification.valid && verification.events === appended;
  console.log(
    verification.valid
      ? `${database.kind}: audit chain verified, ${verification.events} events valid (${appended} appended by the benchmark)`
      : `${database.kind}: audit chain INVALID at event ${verification.first_invalid_seq}: ${verification.reason}`,
  );
  if (verification.valid && !chainValid) {
    console.log(`${database.kind}: the chain holds ${verification.events} events, but the benchmark appended ${appended}`);
  }
  return { results, chainValid };
}

/**
 * Runs one case and side once, or with --idle-wait, waits for an idle machine first and
 * repeats the run while other processes used more than SKEWED_OTHER_CORES during it.
 */
async function measuredRun(database: BenchDatabase, writers: number, side: Side, options: BenchOptions, label: string): Promise<WriterRun> {
  const attempts = options.idleWaitSeconds > 0 ? MAX_ATTEMPTS : 1;
  for (let attempt = 1; ; attempt += 1) {
    if (options.idleWaitSeconds > 0 && !(await waitForIdleMachine(options.idleWaitSeconds))) {
      console.error(`  ${label}: the machine was still busy after ${options.idleWaitSeconds}s; running anyway`);
    }

    const run = await timedRun(database, writers, side, options);
    const otherCores = otherCoresOf(run);
    if (attempt >= attempts || otherCores === undefined || otherCores <= SKEWED_OTHER_CORES) {
      return run;
    }
    console.error(`  ${label}: other processes used ${otherCores.toFixed(2)} cores; repeating (attempt ${attempt + 1} of ${attempts})`);
  }
}

/** Runs the writers unmeasured for the warm-up time, then measured for the case time. */
async function timedRun(database: BenchDatabase, writers: number, side: Side, options: BenchOptions): Promise<WriterRun> {
  if (options.warmupSeconds > 0) {
    await runWriters({ writers, durationMs: options.warmupSeconds * 1000, ...side });
  }
  return runWriters({ writers, durationMs: options.seconds * 1000, ...side, sampleUrl: database.url });
}

function describeMachine(options: BenchOptions): string {
  const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1);
  return [
    `audit append benchmark, ${new Date().toISOString()}`,
    `machine: ${coreCount()} cores, ${gib(totalmem())} GiB memory (${gib(freemem())} GiB free), Node.js ${process.version}, ${process.platform}/${process.arch}`,
    // Other work on the machine skews every figure; the load average shows whether there was any.
    `load average at start (1, 5, 15 min): ${loadavg().map((load) => load.toFixed(2)).join(", ")}`,
    `cases: writers ${options.writerCounts.join(", ")}; ${options.rounds} rounds of ${options.seconds}s each after ${options.warmupSeconds}s warm-up; one event per transaction`,
    options.idleWaitSeconds > 0
      ? `idle wait: up to ${options.idleWaitSeconds}s before each run, up to ${MAX_ATTEMPTS} attempts per run`
      : "idle wait: off",
  ].join("\n");
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  console.error("bench: failed:", error);
  process.exitCode = 1;
}
