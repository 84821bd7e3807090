import type { BackendResult, MeasuredRun } from "./backend-suite.js";
import type { CpuProfile, LoadProfile } from "./load-profile.js";
import { percentile } from "./load-loops.js";
import type { MemoryRun } from "./memory-run.js";

/** Targets on PostgreSQL that the reading compares against. */
export const TARGETS = {
  /** HTTP peak throughput as a fraction of the baseline's peak, at least. */
  minThroughputRatio: 0.6,
  /** p99 latency of the open loop at half of the peak throughput, below, in milliseconds. */
  maxHalfLoadP99Ms: 25,
  /** Tokens in the long run. */
  memoryTokens: 100_000,
  /**
   * RSS growth over 100,000 tokens, extrapolated from the second half's slope, below which
   * memory counts as flat, in bytes: 10 MiB, about 105 bytes per token. A leak of one small
   * object per token (a Map entry, a closure) exceeds it.
   */
  maxGrowthPer100kTokens: 10 * 2 ** 20,
};

/** How many backend states the CPU table lists per run, busiest first. */
const LISTED_BACKEND_STATES = 4;
/** Interval of the RSS series printed for the long run, in seconds. */
const RSS_SERIES_STEP_SECONDS = 15;

const ms = (value: number) => (Number.isNaN(value) ? "n/a" : value.toFixed(2));
const rate = (value: number) => Math.round(value).toString();
const cores = (value: number | undefined) => (value === undefined ? "n/a" : value.toFixed(2));
const mib = (bytes: number | undefined) => (bytes === undefined ? "n/a" : (bytes / 2 ** 20).toFixed(1));

function p50(run: MeasuredRun): number {
  return percentile(run.loop.latenciesMs, 0.5);
}

function p99(run: MeasuredRun): number {
  return percentile(run.loop.latenciesMs, 0.99);
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Throughput and latency through HTTP against the baseline, per backend and concurrency. */
export function throughputTable(results: BackendResult[]): string {
  const rows = results.flatMap((result) =>
    result.http.map((http, index) => {
      const baseline = result.baseline[index]!;
      return [
        result.backend,
        String(http.concurrency),
        rate(http.loop.perSecond),
        ms(p50(http)),
        ms(p99(http)),
        rate(baseline.loop.perSecond),
        ms(p50(baseline)),
        ms(p99(baseline)),
        (http.loop.perSecond / baseline.loop.perSecond).toFixed(2),
        String(http.loop.failed + baseline.loop.failed),
      ];
    }),
  );
  return table(
    ["backend", "concurrency", "HTTP tokens/s", "HTTP p50 ms", "HTTP p99 ms", "baseline/s", "baseline p50 ms", "baseline p99 ms", "HTTP / baseline", "failed"],
    rows,
  );
}

/** The open loop at half of the peak throughput. */
export function halfLoadTable(results: BackendResult[]): string {
  const rows = results.map((result) => {
    const { loop } = result.halfLoad;
    return [
      result.backend,
      `${rate(loop.targetPerSecond)} (peak ${rate(result.peak.loop.perSecond)} at concurrency ${result.peak.concurrency})`,
      rate(loop.perSecond),
      ms(percentile(loop.latenciesMs, 0.5)),
      ms(percentile(loop.latenciesMs, 0.99)),
      ms(percentile(loop.latenciesMs, 0.999)),
      ms(percentile(loop.startLagsMs, 0.99)),
      `${loop.failed} / ${loop.skipped}`,
    ];
  });
  return table(["backend", "target tokens/s", "achieved/s", "p50 ms", "p99 ms", "p99.9 ms", "client start lag p99 ms", "failed / skipped"], rows);
}

/** The in-process broker path at the peak concurrency, with the time of its two stages. */
export function brokerPathTable(results: BackendResult[]): string {
  const rows = results.map((result) => {
    const run = result.brokerPath;
    const authenticate = [...run.stages.authenticate].sort((left, right) => left - right);
    const issue = [...run.stages.issue].sort((left, right) => left - right);
    return [
      result.backend,
      String(run.concurrency),
      rate(run.loop.perSecond),
      `${ms(p50(run))} / ${ms(p99(run))}`,
      `${ms(percentile(authenticate, 0.5))} / ${ms(percentile(authenticate, 0.99))}`,
      `${ms(percentile(issue, 0.5))} / ${ms(percentile(issue, 0.99))}`,
      rate(result.peak.loop.perSecond),
    ];
  });
  return table(
    ["backend", "concurrency", "in-process tokens/s", "total p50 / p99 ms", "authenticate p50 / p99 ms", "issue p50 / p99 ms", "HTTP tokens/s at same concurrency"],
    rows,
  );
}

/** CPU use and, on PostgreSQL, the states of the database's backends in every run. */
export function profileTable(results: BackendResult[]): string {
  const rows = results.flatMap((result) => {
    const runs: [string, MeasuredRun][] = [
      ...result.http.map((run): [string, MeasuredRun] => [`HTTP c=${run.concurrency}`, run]),
      [`HTTP half load`, result.halfLoad],
      [`in-process broker c=${result.brokerPath.concurrency}`, result.brokerPath],
      ...result.baseline.map((run): [string, MeasuredRun] => [`baseline c=${run.concurrency}`, run]),
    ];
    return runs.map(([label, run]) => [result.backend, label, ...cpuCells(run.profile.cpu), String(run.signedOnDemand), backendStates(run.profile)]);
  });
  return table(["backend", "run", "bench cores", "broker cores", "server cores", "other cores", "signed on demand", "PostgreSQL backends (average count)"], rows);
}

function cpuCells(cpu: CpuProfile): string[] {
  return [cores(cpu.bench), cores(cpu.broker), cores(cpu.server), cores(cpu.other)];
}

function backendStates(profile: LoadProfile): string {
  if (profile.activitySamples === 0) {
    return "n/a";
  }
  return [...profile.backendStates]
    .sort(([, left], [, right]) => right - left)
    .slice(0, LISTED_BACKEND_STATES)
    .map(([state, count]) => `${state} ${count.toFixed(1)}`)
    .join("; ");
}

/** RSS of the broker over the long run. */
export function memoryTable(results: BackendResult[]): string {
  const rows = results
    .filter((result): result is BackendResult & { memory: MemoryRun } => result.memory !== undefined)
    .map(({ backend, idleRssBytes, memory }) => [
      backend,
      String(memory.concurrency),
      `${memory.loop.completed} in ${memory.loop.seconds.toFixed(0)} s (${rate(memory.loop.perSecond)}/s)`,
      String(memory.loop.failed),
      mib(idleRssBytes),
      mib(memory.startBytes),
      mib(memory.peakBytes),
      mib(memory.endBytes),
      ((memory.secondHalfBytesPerSecond * 60) / 2 ** 20).toFixed(2),
      memory.secondHalfBytesPerToken.toFixed(1),
    ]);
  return table(
    ["backend", "concurrency", "tokens", "failed", "RSS idle MiB", "start MiB", "peak MiB", "end MiB", "second-half slope MiB/min", "bytes/token"],
    rows,
  );
}

/** The broker's RSS every RSS_SERIES_STEP_SECONDS over the long run, as one line. */
export function rssSeries(memory: MemoryRun): string {
  const points: string[] = [];
  let next = 0;
  for (const sample of memory.samples) {
    if (sample.elapsedSeconds >= next || sample === memory.samples.at(-1)) {
      points.push(`${Math.round(sample.elapsedSeconds)} s: ${mib(sample.rssBytes)}`);
      next = Math.floor(sample.elapsedSeconds / RSS_SERIES_STEP_SECONDS + 1) * RSS_SERIES_STEP_SECONDS;
    }
  }
  return `RSS in MiB by elapsed time: ${points.join(", ")}`;
}

/** One line per PostgreSQL target: met or missed, with the figures behind it. */
export function targetVerdicts(results: BackendResult[]): string[] {
  const postgres = results.find((result) => result.backend === "postgres");
  const lines: string[] = [];
  if (!postgres) {
    return ["targets: not judged, because they are set for PostgreSQL and this run had no DATABASE_URL"];
  }

  const baselinePeak = Math.max(...postgres.baseline.map((run) => run.loop.perSecond));
  const ratio = postgres.peak.loop.perSecond / baselinePeak;
  lines.push(
    `${ratio >= TARGETS.minThroughputRatio ? "MET" : "MISSED"}: throughput ${rate(postgres.peak.loop.perSecond)} tokens/s is ${ratio.toFixed(2)} of the baseline's ${rate(baselinePeak)}/s (target at least ${TARGETS.minThroughputRatio})`,
  );

  const halfP99 = percentile(postgres.halfLoad.loop.latenciesMs, 0.99);
  lines.push(
    `${halfP99 < TARGETS.maxHalfLoadP99Ms ? "MET" : "MISSED"}: p99 at half of peak (${rate(postgres.halfLoad.loop.targetPerSecond)} tokens/s) is ${ms(halfP99)} ms (target under ${TARGETS.maxHalfLoadP99Ms} ms)`,
  );

  const memory = postgres.memory;
  if (!memory) {
    lines.push("NOT RUN: the long run was not on PostgreSQL (--memory-backend)");
  } else {
    const growth = memory.secondHalfBytesPerToken * TARGETS.memoryTokens;
    const flat = growth < TARGETS.maxGrowthPer100kTokens;
    const complete = memory.loop.completed >= TARGETS.memoryTokens;
    const verdict = flat ? (complete ? "MET" : "FLAT, BUT SHORT") : "MISSED";
    lines.push(
      `${verdict}: RSS ${mib(memory.startBytes)} -> ${mib(memory.endBytes)} MiB (peak ${mib(memory.peakBytes)}) over ${memory.loop.completed} tokens; the second half's slope extrapolates to ${mib(growth)} MiB per ${TARGETS.memoryTokens} tokens (flat below ${mib(TARGETS.maxGrowthPer100kTokens)})`,
    );
  }
  return lines;
}
