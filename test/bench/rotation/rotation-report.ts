import type { RunProfile } from "./run-profile.js";
import type { ThroughputCase, ThroughputRound } from "./throughput-round.js";
import type { TickCase, Timings } from "./tick-cost.js";

/** A tick on PostgreSQL with the default 10,000 secrets, none due, must take less than this, in milliseconds. */
export const TICK_TARGET_MS = 50;

/** Formats one row per case: the median round of each side, their ratio, and the engine's wait for the first tick. */
export function throughputSummaryTable(cases: ThroughputCase[]): string {
  const rows = cases.map((entry) => {
    const baseline = medianOf(entry.rounds.map((round) => round.baseline.flipsPerSecond));
    const engine = medianOf(entry.rounds.map((round) => round.engine.rotationsPerSecond));
    const afterStart = medianOf(entry.rounds.map((round) => round.engine.rotationsPerSecondAfterStart));
    const firstStart = medianOf(entry.rounds.map((round) => round.engine.firstStartMs));
    return [
      entry.backend,
      entry.backend === "pglite" ? "1 (in-process)" : String(entry.processes),
      String(entry.concurrency),
      String(entry.secrets),
      formatRate(baseline),
      formatRate(engine),
      (engine / baseline).toFixed(3),
      formatRate(afterStart),
      String(Math.round(firstStart)),
    ];
  });
  return markdownTable(
    ["backend", "processes", "in flight", "secrets", "baseline flips/s", "engine rotations/s", "engine / baseline", "engine after first start /s", "first start ms"],
    rows,
    [false, false, true, true, true, true, true, true, true],
  );
}

/**
 * Formats one row per round and side with throughput, elapsed time and CPU use in cores
 * (broker processes, PostgreSQL server, this process, everything else). On PostgreSQL
 * it adds the average number of the database's backends that waited for a lock, waited
 * in WAL write or flush, or sat idle inside a transaction.
 */
export function throughputDetailTable(cases: ThroughputCase[]): string {
  const rows: string[][] = [];
  for (const entry of cases) {
    for (const round of entry.rounds) {
      for (const side of round.baselineFirst ? (["baseline", "engine"] as const) : (["engine", "baseline"] as const)) {
        const [rate, elapsedMs, profile] = sideFigures(round, side);
        rows.push([
          entry.backend,
          String(entry.processes),
          String(round.round),
          side,
          formatRate(rate),
          String(Math.round(elapsedMs)),
          side === "engine" ? (round.engine.completedByProcess?.join(" / ") ?? "n/a") : "",
          formatOptional(profile.brokerCores, 2),
          formatOptional(profile.server?.cpuCores, 2),
          profile.benchCores.toFixed(2),
          formatOptional(profile.otherCores, 2),
          formatOptional(profile.server?.lockWaits, 1),
          formatOptional(profile.server?.walWaits, 1),
          formatOptional(profile.server?.idleInTransaction, 1),
        ]);
      }
    }
  }
  return markdownTable(
    ["backend", "processes", "round", "side", "per s", "elapsed ms", "completed per process", "broker cores", "server cores", "bench cores", "other cores", "lock waits", "WAL waits", "idle in tx"],
    rows,
    [false, true, true, false, true, true, true, true, true, true, true, true, true, true],
  );
}

/** Formats one row per round with the medians of the engine's phases, from the rotation records. */
export function timelineTable(cases: ThroughputCase[]): string {
  const rows = cases.flatMap((entry) =>
    entry.rounds.map((round) => {
      const { timeline } = round.engine;
      return [
        entry.backend,
        String(entry.processes),
        String(round.round),
        formatMs(timeline.queuedMs),
        formatMs(timeline.runningMs),
        ["create", "set", "test", "finish"].map((step) => formatMs(timeline.stepMs[step] ?? Number.NaN)).join(" / "),
        formatMs(timeline.betweenStepsMs),
        timeline.startTransactions.map((start) => `${start.rotations}: ${start.totalMs} (${start.appendsMs})`).join(", "),
        timeline.slotOccupancy.toFixed(2),
        formatOptional(timeline.batchWaitShare, 2),
      ];
    }),
  );
  return markdownTable(
    [
      "backend",
      "processes",
      "round",
      "queued ms",
      "running ms",
      "in step ms (create / set / test / finish)",
      "between steps ms",
      "start transactions, rotations: ms (appends ms)",
      "slot occupancy",
      "batch wait share",
    ],
    rows,
    [false, true, true, true, true, true, true, true, true, true],
  );
}

/** Statements that waited for a lock during the engine runs, at most this many per case. */
const LOCK_WAITS_SHOWN = 3;

/**
 * Lists, per PostgreSQL case, the statements that the backends waited in for a lock
 * during the engine's runs, with the average number of backends waiting in each over
 * all rounds' samples.
 */
export function lockWaitText(cases: ThroughputCase[]): string {
  const lines: string[] = [];
  for (const entry of cases) {
    const profiles = entry.rounds.flatMap((round) => (round.engine.profile.server ? [round.engine.profile.server] : []));
    const samples = profiles.reduce((sum, profile) => sum + profile.samples, 0);
    if (samples === 0) {
      continue;
    }
    const totals = new Map<string, number>();
    for (const wait of profiles.flatMap((profile) => profile.waits)) {
      totals.set(wait.statement, (totals.get(wait.statement) ?? 0) + wait.backendSamples);
    }
    const top = [...totals].sort(([, left], [, right]) => right - left).slice(0, LOCK_WAITS_SHOWN);
    lines.push(`${entry.backend}, ${entry.processes} processes, ${samples} samples:`);
    lines.push(...(top.length === 0 ? ["    no backend waited for a lock"] : top.map(([statement, count]) => `    ${(count / samples).toFixed(2)} waiting in: ${statement}`)));
  }
  return lines.join("\n");
}

function formatMs(value: number): string {
  return Number.isNaN(value) ? "n/a" : value.toFixed(1);
}

function sideFigures(round: ThroughputRound, side: "baseline" | "engine"): [number, number, RunProfile] {
  if (side === "baseline") {
    return [round.baseline.flipsPerSecond, round.baseline.seconds * 1000, round.baseline.profile];
  }
  return [round.engine.rotationsPerSecond, round.engine.elapsedMs, round.engine.profile];
}

/** Formats one row per backend and tick series: `select 1` and tick timings and the ratio of their medians. */
export function tickTable(cases: TickCase[]): string {
  const rows = cases.flatMap((entry) =>
    entry.series.map((series) => [
      entry.backend,
      String(entry.secrets),
      String(series.completedRotations),
      String(series.ticks),
      formatTimings(series.selectOne),
      formatTimings(series.tick),
      (series.tick.p50 / series.selectOne.p50).toFixed(1),
      series.benchCores.toFixed(2),
      formatOptional(series.machineCores, 2),
    ]),
  );
  return markdownTable(
    ["backend", "secrets", "completed rotations", "ticks", "select 1 p50 / p95 / max ms", "tick p50 / p95 / max ms", "tick / select 1 (p50)", "bench cores", "machine cores"],
    rows,
    [false, true, true, true, true, true, true, true, true],
  );
}

/** Describes, per PostgreSQL tick series, whether every timed tick stayed under TICK_TARGET_MS. */
export function tickVerdicts(cases: TickCase[]): string[] {
  return cases
    .filter((entry) => entry.backend === "postgres")
    .flatMap((entry) =>
      entry.series.map((series) => {
        const met = series.tick.max < TICK_TARGET_MS ? "met" : "NOT met";
        return (
          `target (tick under ${TICK_TARGET_MS} ms on PostgreSQL, ${entry.secrets} secrets none due, ${series.completedRotations} completed rotations): ` +
          `${met}, max ${series.tick.max.toFixed(2)} ms, p95 ${series.tick.p95.toFixed(2)} ms over ${series.ticks} ticks`
        );
      }),
    );
}

/** CPU use of other processes, in cores, above which a run counts as skewed. */
const SKEWED_OTHER_CORES = 0.25;

/** Warns when other processes used notable CPU during a throughput run, or returns undefined. */
export function interferenceWarning(cases: ThroughputCase[]): string | undefined {
  const profiles = cases.flatMap((entry) => entry.rounds.flatMap((round) => [round.baseline.profile, round.engine.profile]));
  const worst = Math.max(0, ...profiles.map((profile) => profile.otherCores ?? 0));
  if (worst <= SKEWED_OTHER_CORES) {
    return undefined;
  }
  return `warning: other processes used up to ${worst.toFixed(2)} cores during a throughput run (column "other cores"), so those figures are low; rerun on an idle machine or with --idle-wait`;
}

/** Formats the EXPLAIN ANALYZE output of each backend's tick statements. */
export function planText(cases: TickCase[]): string {
  return cases
    .flatMap((entry) => entry.plans.map((plan) => `${entry.backend}, ${plan.statement}:\n${plan.lines.map((line) => `    ${line}`).join("\n")}`))
    .join("\n\n");
}

/** Returns the median of `values`, the mean of the two middle values for an even count. */
export function medianOf(values: number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function formatTimings(timings: Timings): string {
  return `${timings.p50.toFixed(2)} / ${timings.p95.toFixed(2)} / ${timings.max.toFixed(2)}`;
}

function formatRate(perSecond: number): string {
  return Math.round(perSecond).toString();
}

function formatOptional(value: number | undefined, digits: number): string {
  return value === undefined ? "n/a" : value.toFixed(digits);
}

function markdownTable(header: string[], rows: string[][], rightAligned: boolean[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, column) => (rightAligned[column] ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join(" | ")} |`;
  const rule = `|${widths.map((width, column) => (rightAligned[column] ? `${"-".repeat(width + 1)}:` : "-".repeat(width + 2))).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}
