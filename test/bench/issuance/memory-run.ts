import { readRssBytes } from "./broker-server.js";
import { type LoopResult, type Operation, runClosedLoop } from "./load-loops.js";

/** Interval between RSS samples of the broker process, in milliseconds. */
const RSS_SAMPLE_INTERVAL_MS = 1000;
/** Interval between reads of the broker's /metrics, in milliseconds. Each read collects every default metric, so it runs less often than the RSS reads. */
const METRICS_SAMPLE_INTERVAL_MS = 5000;
/** Start of the long run left out of the whole-run slope, in seconds: the broker's heap grows to its working size then. */
export const MEMORY_WARMUP_SECONDS = 15;

/** One reading of the broker's resident set size during the long run. */
export interface RssSample {
  elapsedSeconds: number;
  tokens: number;
  rssBytes: number;
}

/** The broker's V8 heap and garbage collections as its /metrics reported them (prom-client default metrics). */
export interface HeapSample {
  elapsedSeconds: number;
  heapUsedBytes: number;
  /** Memory that V8 has reserved for its heap, used or not; part of RSS. */
  heapTotalBytes: number;
  /** Memory of C++ objects bound to JavaScript objects, such as Buffers, outside the V8 heap. */
  externalBytes: number;
  majorCollections: number;
  majorCollectionSeconds: number;
}

/** What the long run issued and how the broker's RSS moved meanwhile. */
export interface MemoryRun {
  loop: LoopResult;
  concurrency: number;
  samples: RssSample[];
  heapSamples: HeapSample[];
  startBytes: number;
  peakBytes: number;
  endBytes: number;
  /** Theil-Sen slope of RSS over the second half of the run, in bytes per second. */
  secondHalfBytesPerSecond: number;
  /** The same slope against tokens issued, in bytes per token. */
  secondHalfBytesPerToken: number;
  /** Theil-Sen slope of RSS against tokens from MEMORY_WARMUP_SECONDS to the end, in bytes per token; NaN for a shorter run. */
  afterWarmupBytesPerToken: number;
}

/**
 * Issues tokens with `concurrency` closed loops until `maxTokens` requests have started or
 * `maxSeconds` have passed. Meanwhile it reads the broker's VmRSS from /proc every second,
 * and its heap use and garbage collections from `metricsUrl` every five seconds.
 */
export async function runMemoryRun(options: {
  brokerPid: number;
  metricsUrl: string;
  concurrency: number;
  maxTokens: number;
  maxSeconds: number;
  operation: Operation;
  onProgress?: (sample: RssSample) => void;
}): Promise<MemoryRun> {
  const samples: RssSample[] = [];
  let tokens = 0;
  const startedAt = performance.now();
  const sample = async () => {
    const rssBytes = await readRssBytes(options.brokerPid);
    if (rssBytes !== undefined) {
      const reading = { elapsedSeconds: (performance.now() - startedAt) / 1000, tokens, rssBytes };
      samples.push(reading);
      options.onProgress?.(reading);
    }
  };

  const heapSamples: HeapSample[] = [];
  const sampleHeap = async () => {
    const heap = await readHeapMetrics(options.metricsUrl);
    if (heap) {
      heapSamples.push({ elapsedSeconds: (performance.now() - startedAt) / 1000, ...heap });
    }
  };

  await Promise.all([sample(), sampleHeap()]);
  const timer = setInterval(() => void sample(), RSS_SAMPLE_INTERVAL_MS);
  const heapTimer = setInterval(() => void sampleHeap(), METRICS_SAMPLE_INTERVAL_MS);
  let loop: LoopResult;
  try {
    loop = await runClosedLoop({
      concurrency: options.concurrency,
      durationMs: options.maxSeconds * 1000,
      maxOperations: options.maxTokens,
      operation: options.operation,
      onCompleted: (completed) => (tokens = completed),
    });
  } finally {
    clearInterval(timer);
    clearInterval(heapTimer);
  }
  await Promise.all([sample(), sampleHeap()]);

  if (samples.length < 4) {
    throw new Error(`the long run took ${samples.length} RSS samples of process ${options.brokerPid}; /proc/<pid>/status must be readable`);
  }
  const secondHalf = samples.filter((reading) => reading.elapsedSeconds >= samples.at(-1)!.elapsedSeconds / 2);
  const afterWarmup = samples.filter((reading) => reading.elapsedSeconds >= MEMORY_WARMUP_SECONDS);
  return {
    loop,
    concurrency: options.concurrency,
    samples,
    heapSamples,
    startBytes: samples[0]!.rssBytes,
    peakBytes: Math.max(...samples.map((reading) => reading.rssBytes)),
    endBytes: samples.at(-1)!.rssBytes,
    secondHalfBytesPerSecond: slope(secondHalf.map((reading) => [reading.elapsedSeconds, reading.rssBytes])),
    secondHalfBytesPerToken: slope(secondHalf.map((reading) => [reading.tokens, reading.rssBytes])),
    afterWarmupBytesPerToken: slope(afterWarmup.map((reading) => [reading.tokens, reading.rssBytes])),
  };
}

/** Reads heap use and major garbage collections from prom-client's default metrics, or undefined when /metrics fails. */
async function readHeapMetrics(metricsUrl: string): Promise<Omit<HeapSample, "elapsedSeconds"> | undefined> {
  try {
    const text = await (await fetch(metricsUrl)).text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
    return {
      heapUsedBytes: value(/^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m),
      heapTotalBytes: value(/^nodejs_heap_size_total_bytes(?:\{[^}]*\})? (\S+)$/m),
      externalBytes: value(/^nodejs_external_memory_bytes(?:\{[^}]*\})? (\S+)$/m),
      majorCollections: value(/^nodejs_gc_duration_seconds_count\{kind="major"[^}]*\} (\S+)$/m),
      majorCollectionSeconds: value(/^nodejs_gc_duration_seconds_sum\{kind="major"[^}]*\} (\S+)$/m),
    };
  } catch {
    return undefined;
  }
}

/**
 * Theil-Sen slope of y over x: the median of the slopes between every pair of points. One
 * garbage collection that returns memory to the system moves a least-squares fit a lot, but
 * the median barely. Returns NaN for fewer than two distinct x values.
 */
function slope(points: [number, number][]): number {
  const slopes: number[] = [];
  for (let i = 0; i < points.length; i += 1) {
    for (let j = i + 1; j < points.length; j += 1) {
      const [x1, y1] = points[i]!;
      const [x2, y2] = points[j]!;
      if (x2 !== x1) {
        slopes.push((y2 - y1) / (x2 - x1));
      }
    }
  }
  slopes.sort((left, right) => left - right);
  return slopes.length === 0 ? Number.NaN : slopes[Math.floor(slopes.length / 2)]!;
}
