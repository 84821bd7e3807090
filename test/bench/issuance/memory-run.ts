import { readRssBytes } from "./broker-server.js";
import { type LoopResult, type Operation, runClosedLoop } from "./load-loops.js";

/** Interval between RSS samples of the broker process, in milliseconds. */
const RSS_SAMPLE_INTERVAL_MS = 1000;

/** One reading of the broker's resident set size during the long run. */
export interface RssSample {
  elapsedSeconds: number;
  tokens: number;
  rssBytes: number;
}

/** What the long run issued and how the broker's RSS moved meanwhile. */
export interface MemoryRun {
  loop: LoopResult;
  concurrency: number;
  samples: RssSample[];
  startBytes: number;
  peakBytes: number;
  endBytes: number;
  /** Least-squares slope of RSS over the second half of the run, in bytes per second. */
  secondHalfBytesPerSecond: number;
  /** The same slope against tokens issued, in bytes per token. */
  secondHalfBytesPerToken: number;
}

/**
 * Issues tokens with `concurrency` closed loops until `maxTokens` requests have started or
 * `maxSeconds` have passed, and reads the broker's VmRSS from /proc every second,
 * from just before the first request to just after the last.
 */
export async function runMemoryRun(options: {
  brokerPid: number;
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

  await sample();
  const timer = setInterval(() => void sample(), RSS_SAMPLE_INTERVAL_MS);
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
  }
  await sample();

  if (samples.length < 4) {
    throw new Error(`the long run took ${samples.length} RSS samples of process ${options.brokerPid}; /proc/<pid>/status must be readable`);
  }
  const secondHalf = samples.filter((reading) => reading.elapsedSeconds >= samples.at(-1)!.elapsedSeconds / 2);
  return {
    loop,
    concurrency: options.concurrency,
    samples,
    startBytes: samples[0]!.rssBytes,
    peakBytes: Math.max(...samples.map((reading) => reading.rssBytes)),
    endBytes: samples.at(-1)!.rssBytes,
    secondHalfBytesPerSecond: slope(secondHalf.map((reading) => [reading.elapsedSeconds, reading.rssBytes])),
    secondHalfBytesPerToken: slope(secondHalf.map((reading) => [reading.tokens, reading.rssBytes])),
  };
}

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / points.length;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / points.length;
  let covariance = 0;
  let variance = 0;
  for (const [x, y] of points) {
    covariance += (x - meanX) * (y - meanY);
    variance += (x - meanX) ** 2;
  }
  return variance === 0 ? 0 : covariance / variance;
}
