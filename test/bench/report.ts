import type { BackendKind } from "./bench-options.js";
import { otherCoresOf, SKEWED_OTHER_CORES, type WriterRun } from "./writers.js";

/** The measured rounds of one backend and writer count, for both sides. */
export interface CaseResult {
  backend: BackendKind;
  writers: number;
  baseline: WriterRun[];
  chained: WriterRun[];
  /** The median round of each side, which the summary reports. */
  baselineMedian: WriterRun;
  chainedMedian: WriterRun;
}

/** Chained throughput at this many writers on PostgreSQL must reach at least TARGET_RATIO of the baseline. */
export const TARGET_WRITERS = 32;
export const TARGET_RATIO = 0.5;

export function ratioOf(result: CaseResult): number {
  return result.chainedMedian.eventsPerSecond / result.baselineMedian.eventsPerSecond;
}

/** Formats a Markdown table of events per second and the chained-to-baseline ratio per case. */
export function summaryTable(results: CaseResult[]): string {
  const rows = results.map((result) => [
    result.backend,
    String(result.writers),
    formatRate(result.baselineMedian.eventsPerSecond),
    formatRate(result.chainedMedian.eventsPerSecond),
    ratioOf(result).toFixed(2),
  ]);
  return markdownTable(["backend", "writers", "baseline events/s", "chained events/s", "chained / baseline"], rows, [false, true, true, true, true]);
}

/**
 * Formats a Markdown table with every round's throughput and, for the median round,
 * latency, CPU use in cores and, on PostgreSQL, the average number of backends in each
 * wait state. "Other cores" is CPU used by processes outside the benchmark and the
 * server, which skews that round.
 */
export function detailTable(results: CaseResult[]): string {
  const rows: string[][] = [];
  for (const result of results) {
    for (const side of ["baseline", "chained"] as const) {
      const median = side === "baseline" ? result.baselineMedian : result.chainedMedian;
      const rounds = side === "baseline" ? result.baseline : result.chained;
      rows.push([
        result.backend,
        String(result.writers),
        side,
        rounds.map((run) => formatRate(run.eventsPerSecond)).join(" / "),
        median.latencyMs.p50.toFixed(2),
        median.latencyMs.p99.toFixed(2),
        median.cpu.nodeCores.toFixed(2),
        formatOptional(median.server?.cpuCores, 2),
        formatOptional(otherCoresOf(median), 2),
        formatOptional(median.server?.lockWaits, 1),
        formatOptional(median.server?.walWaits, 1),
        formatOptional(median.server?.idleInTransaction, 1),
      ]);
    }
  }
  return markdownTable(
    [
      "backend",
      "writers",
      "side",
      "events/s per round",
      "p50 ms",
      "p99 ms",
      "node cores",
      "server cores",
      "other cores",
      "lock waits",
      "WAL waits",
      "idle in tx",
    ],
    rows,
    [false, true, false, true, true, true, true, true, true, true, true, true],
  );
}

/** Describes whether PostgreSQL at the target writer count met the target ratio, or returns undefined when that case did not run. */
export function targetVerdict(results: CaseResult[]): string | undefined {
  const target = results.find((result) => result.backend === "postgres" && result.writers === TARGET_WRITERS);
  if (!target) {
    return undefined;
  }
  const ratio = ratioOf(target);
  const met = ratio >= TARGET_RATIO ? "met" : "NOT met";
  return `target (chained >= ${TARGET_RATIO} x baseline at ${TARGET_WRITERS} writers on PostgreSQL): ${met}, ratio ${ratio.toFixed(2)}`;
}

/** Warns when other processes used notable CPU during a reported round, or returns undefined. */
export function interferenceWarning(results: CaseResult[]): string | undefined {
  const runs = results.flatMap((result) => [result.baselineMedian, result.chainedMedian]);
  const worst = Math.max(0, ...runs.map((run) => otherCoresOf(run) ?? 0));
  if (worst <= SKEWED_OTHER_CORES) {
    return undefined;
  }
  return `warning: other processes used up to ${worst.toFixed(2)} cores during the reported rounds, so those figures are low; rerun on an idle machine or with --idle-wait`;
}

function formatOptional(value: number | undefined, digits: number): string {
  return value === undefined ? "n/a" : value.toFixed(digits);
}

function formatRate(eventsPerSecond: number): string {
  return Math.round(eventsPerSecond).toString();
}

function markdownTable(header: string[], rows: string[][], rightAligned: boolean[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells
      .map((cell, column) => (rightAligned[column] ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join(" | ")} |`;
  const rule = `|${widths.map((width, column) => (rightAligned[column] ? `${"-".repeat(width + 1)}:` : "-".repeat(width + 2))).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}
