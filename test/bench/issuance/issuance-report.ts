import type { BackendResult, MeasuredRun } from "./backend-suite.js";
import type { ProfileSummary } from "./cpu-profile-summary.js";
import type { CpuProfile, LoadProfile } from "./load-profile.js";
import { percentile } from "./load-loops.js";
import { MEMORY_WARMUP_SECONDS, type MemoryRun } from "./memory-run.js";

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

/** Number of garbage-collection pauses listed from a CPU profile, the longest first. */
const LISTED_GC_PAUSES = 5;
/** How many backend states the CPU table lists per run, busiest first. */
const LISTED_BACKEND_STATES = 4;
/** Interval of the RSS and heap series printed for the long run, in seconds. */
const RSS_SERIES_STEP_SECONDS = 15;

const ms = (value: number) => (Number.isNaN(value) ? "n/a" : value.toFixed(2));
const rate = (value: number) => Math.round(value).toString();
const cores = (value: number | undefined) => (value === undefined ? "n/a" : value.toFixed(2));
const mib = (bytes: number | undefined) => (bytes === undefined || Number.isNaN(bytes) ? "n/a" : (bytes / 2 ** 20).toFixed(1));
const perMinute = (bytesPerSecond: number) => (Number.isNaN(bytesPerSecond) ? "n/a" : ((bytesPerSecond * 60) / 2 ** 20).toFixed(2));
const perToken = (bytesPerToken: number) => (Number.isNaN(bytesPerToken) ? "n/a" : bytesPerToken.toFixed(1));

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

/** Formats the open loop at half of the peak throughput as a table. */
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

/** Seconds listed by the tail analysis of the open loop, slowest first. */
const LISTED_SLOW_SECONDS = 3;
/**
 * Period of the broker's lease expiry sweep with the default BROKER_SWEEP_SCHEDULE, in
 * seconds. It starts at seconds 0, 15, 30 and 45 of each minute.
 */
const SWEEP_PERIOD_SECONDS = 15;

/**
 * Describes the open loop's requests slower than the p99 target: how many, whether they
 * bunch in a few seconds, and how many started within one second after an expiry sweep
 * tick. Bunched slow requests point to a stall, such as a pause of the broker's event loop
 * or of its host, rather than to slow requests spread evenly.
 */
export function halfLoadTail(result: BackendResult): string {
  const { timeline } = result.halfLoad.loop;
  const slow = timeline.filter(([, latency]) => latency >= TARGETS.maxHalfLoadP99Ms);
  if (slow.length === 0) {
    return `${result.backend}: no request of the open loop took ${TARGETS.maxHalfLoadP99Ms} ms or more`;
  }

  const bySecond = new Map<number, number[]>();
  for (const [startMs, latency] of slow) {
    const second = Math.floor(startMs / 1000);
    const latencies = bySecond.get(second) ?? [];
    latencies.push(latency);
    bySecond.set(second, latencies);
  }
  const slowest = [...bySecond]
    .sort(([, left], [, right]) => right.length - left.length)
    .slice(0, LISTED_SLOW_SECONDS)
    .map(([second, latencies]) => `${new Date(second * 1000).toISOString().slice(11, 19)} UTC: ${latencies.length}, up to ${ms(Math.max(...latencies))} ms`);
  const afterSweep = slow.filter(([startMs]) => Math.floor(startMs / 1000) % SWEEP_PERIOD_SECONDS === 0).length;
  return [
    `${result.backend}: ${slow.length} of ${timeline.length} requests of the open loop (${((slow.length / timeline.length) * 100).toFixed(1)}%) took ${TARGETS.maxHalfLoadP99Ms} ms or more`,
    `they started in ${bySecond.size} distinct seconds; most in ${slowest.join("; ")}`,
    `${afterSweep} of them started in the first second after a lease expiry sweep tick (every ${SWEEP_PERIOD_SECONDS} s); an even spread would put ${((slow.length / SWEEP_PERIOD_SECONDS)).toFixed(0)} there`,
  ].join("\n  ");
}

/** Formats the in-process broker path, with the time of its two stages, next to HTTP at the same concurrency. */
export function brokerPathTable(results: BackendResult[]): string {
  const rows = results.flatMap((result) =>
    result.brokerPath.map((run) => {
      const http = result.http.find((candidate) => candidate.concurrency === run.concurrency);
      const authenticate = [...run.stages.authenticate].sort((left, right) => left - right);
      const issue = [...run.stages.issue].sort((left, right) => left - right);
      return [
        result.backend,
        String(run.concurrency),
        rate(run.loop.perSecond),
        `${ms(p50(run))} / ${ms(p99(run))}`,
        `${ms(percentile(authenticate, 0.5))} / ${ms(percentile(authenticate, 0.99))}`,
        `${ms(percentile(issue, 0.5))} / ${ms(percentile(issue, 0.99))}`,
        http ? rate(http.loop.perSecond) : "n/a",
      ];
    }),
  );
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
      ...result.brokerPath.map((run): [string, MeasuredRun] => [`in-process broker c=${run.concurrency}`, run]),
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
      perMinute(memory.secondHalfBytesPerSecond),
      perToken(memory.secondHalfBytesPerToken),
      perToken(memory.afterWarmupBytesPerToken),
    ]);
  return table(
    [
      "backend",
      "concurrency",
      "tokens",
      "failed",
      "RSS idle MiB",
      "start MiB",
      "peak MiB",
      "end MiB",
      "second-half slope MiB/min",
      "second-half bytes/token",
      `bytes/token after ${MEMORY_WARMUP_SECONDS} s`,
    ],
    rows,
  );
}

/** Formats the broker's RSS and heap use every RSS_SERIES_STEP_SECONDS over the long run, and its major garbage collections. */
export function memorySeries(memory: MemoryRun): string {
  const lines = [
    `RSS in MiB by elapsed time: ${series(memory.samples.map((sample) => [sample.elapsedSeconds, sample.rssBytes]))}`,
    `V8 heap used in MiB by elapsed time: ${series(memory.heapSamples.map((sample) => [sample.elapsedSeconds, sample.heapUsedBytes]))}`,
    `V8 heap total in MiB by elapsed time: ${series(memory.heapSamples.map((sample) => [sample.elapsedSeconds, sample.heapTotalBytes]))}`,
    `external memory in MiB by elapsed time: ${series(memory.heapSamples.map((sample) => [sample.elapsedSeconds, sample.externalBytes]))}`,
  ];
  const first = memory.heapSamples[0];
  const last = memory.heapSamples.at(-1);
  if (first && last) {
    const collections = last.majorCollections - first.majorCollections;
    const seconds = last.majorCollectionSeconds - first.majorCollectionSeconds;
    lines.push(`major garbage collections during the run: ${collections}, ${(seconds * 1000).toFixed(0)} ms in total`);
  }
  return lines.join("\n  ");
}

/** Formats [elapsed seconds, bytes] points as MiB, one every RSS_SERIES_STEP_SECONDS and the last. */
function series(points: [number, number][]): string {
  const shownPoints: string[] = [];
  let next = 0;
  let lastShownSecond = Number.NaN;
  points.forEach(([seconds, bytes], index) => {
    const second = Math.round(seconds);
    const due = seconds >= next || index === points.length - 1;
    if (due && second !== lastShownSecond) {
      shownPoints.push(`${second} s: ${mib(bytes)}`);
      lastShownSecond = second;
      next = Math.floor(seconds / RSS_SERIES_STEP_SECONDS + 1) * RSS_SERIES_STEP_SECONDS;
    }
  });
  return shownPoints.join(", ");
}

/** Judges each PostgreSQL target and returns one line per target, with the figures behind the verdict. */
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
    // Both slopes must stay under the limit. They disagree when the run is short against the
    // period of the garbage collector's sawtooth, and then the run cannot tell.
    const secondHalfGrowth = memory.secondHalfBytesPerToken * TARGETS.memoryTokens;
    const afterWarmupGrowth = memory.afterWarmupBytesPerToken * TARGETS.memoryTokens;
    const secondHalfFlat = secondHalfGrowth < TARGETS.maxGrowthPer100kTokens;
    const afterWarmupFlat = afterWarmupGrowth < TARGETS.maxGrowthPer100kTokens;
    let verdict = "MISSED";
    if (Number.isNaN(secondHalfGrowth) || Number.isNaN(afterWarmupGrowth)) {
      verdict = "INCONCLUSIVE (the run was too short for both slopes)";
    } else if (secondHalfFlat !== afterWarmupFlat) {
      verdict = "INCONCLUSIVE";
    } else if (secondHalfFlat) {
      verdict = memory.loop.completed >= TARGETS.memoryTokens ? "MET" : "FLAT, BUT SHORT";
    }
    lines.push(
      `${verdict}: RSS ${mib(memory.startBytes)} -> ${mib(memory.endBytes)} MiB (peak ${mib(memory.peakBytes)}) over ${memory.loop.completed} tokens; ` +
        `extrapolated to ${TARGETS.memoryTokens} tokens, the second half's slope gives ${mib(secondHalfGrowth)} MiB and the slope after ${MEMORY_WARMUP_SECONDS} s gives ${mib(afterWarmupGrowth)} MiB (flat below ${mib(TARGETS.maxGrowthPer100kTokens)} MiB)`,
    );
  }
  return lines;
}

/** Formats where the broker process spent its CPU time over its whole life, from its V8 CPU profile. */
export function cpuProfileTables(backend: string, summary: ProfileSummary): string {
  const rows = (profileRows: ProfileSummary["byOrigin"]) =>
    profileRows.map((row) => [row.name, row.milliseconds.toFixed(0), `${(row.share * 100).toFixed(1)}%`]);
  const pauses = summary.garbageCollectionPausesMs;
  const longest = pauses.slice(0, LISTED_GC_PAUSES).map((pause) => pause.toFixed(1));
  return [
    `${backend}: broker CPU profile ${summary.file}, ${(summary.busyMilliseconds / 1000).toFixed(1)} s of busy CPU time (self time, idle excluded)`,
    `garbage collection on the main thread: ${pauses.length} runs of samples, ${pauses.filter((pause) => pause >= 10).length} of 10 ms or more; longest ${longest.join(", ")} ms`,
    "",
    table(["origin", "self ms", "share"], rows(summary.byOrigin)),
    "",
    table(["function", "self ms", "share"], rows(summary.byFunction)),
  ].join("\n");
}
