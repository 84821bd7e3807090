import { setTimeout as sleep } from "node:timers/promises";

/** Runs one operation and resolves true when it succeeded; a rejection also counts as a failure. */
export type Operation = () => Promise<boolean>;

/** Distinct failure messages kept per run for the report. */
const MAX_FAILURE_MESSAGES = 3;

/** What one timed run achieved. Latencies are in milliseconds, sorted ascending, of successful operations only. */
export interface LoopResult {
  completed: number;
  failed: number;
  /** The first few distinct messages of rejected operations. */
  failureMessages: string[];
  seconds: number;
  perSecond: number;
  latenciesMs: number[];
}

/**
 * Runs a closed loop: `concurrency` loops each run the operation, wait for it, and run the
 * next, until `durationMs` has passed or `maxOperations` have started. Then the operations in
 * flight finish. Throughput is successful operations divided by the time until the last ended.
 */
export async function runClosedLoop(options: {
  concurrency: number;
  durationMs: number;
  maxOperations?: number;
  operation: Operation;
  /** Called after each successful operation with the running count. */
  onCompleted?: (completed: number) => void;
}): Promise<LoopResult> {
  const latencies: number[] = [];
  const limit = options.maxOperations ?? Number.POSITIVE_INFINITY;
  const failures = new FailureLog();
  let started = 0;
  const startedAt = performance.now();
  const deadline = startedAt + options.durationMs;

  const loop = async () => {
    while (performance.now() < deadline && started < limit) {
      started += 1;
      const begin = performance.now();
      if (await failures.run(options.operation)) {
        latencies.push(performance.now() - begin);
        options.onCompleted?.(latencies.length);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, loop));
  return summarize(latencies, failures, (performance.now() - startedAt) / 1000);
}

/** What an open-loop run achieved, with the operations it skipped because too many were in flight. */
export interface OpenLoopResult extends LoopResult {
  targetPerSecond: number;
  skipped: number;
  /** How late the client started operations against their schedule, in milliseconds, sorted ascending. */
  startLagsMs: number[];
  /** Every successful operation as [scheduled start in ms since the epoch, latency in ms], in completion order. */
  timeline: [number, number][];
}

/**
 * Runs an open loop: starts operations at a fixed rate for `durationMs`, each at its
 * scheduled time whether or not earlier ones finished. Latency counts from the scheduled
 * start, so a stalled server shows as latency and is not hidden by a client that waits
 * (coordinated omission). At most `maxInFlight` operations run at once, and an operation due
 * while that many are in flight is skipped and counted.
 */
export async function runOpenLoop(options: {
  perSecond: number;
  durationMs: number;
  maxInFlight: number;
  operation: Operation;
}): Promise<OpenLoopResult> {
  const latencies: number[] = [];
  const intervalMs = 1000 / options.perSecond;
  const total = Math.floor(options.durationMs / intervalMs);
  const inFlight = new Set<Promise<void>>();
  const startLags: number[] = [];
  const timeline: [number, number][] = [];
  const failures = new FailureLog();
  let skipped = 0;
  const startedAt = performance.now();
  const startedAtEpochMs = Date.now();

  for (let index = 0; index < total; index += 1) {
    const scheduledAt = startedAt + index * intervalMs;
    const wait = scheduledAt - performance.now();
    if (wait >= 1) {
      await sleep(wait);
    }
    if (inFlight.size >= options.maxInFlight) {
      skipped += 1;
      continue;
    }
    startLags.push(performance.now() - scheduledAt);
    const running: Promise<void> = failures.run(options.operation).then((succeeded) => {
      if (succeeded) {
        const latency = performance.now() - scheduledAt;
        latencies.push(latency);
        timeline.push([startedAtEpochMs + (scheduledAt - startedAt), latency]);
      }
      inFlight.delete(running);
    });
    inFlight.add(running);
  }
  await Promise.all(inFlight);

  startLags.sort((left, right) => left - right);
  return {
    ...summarize(latencies, failures, (performance.now() - startedAt) / 1000),
    targetPerSecond: options.perSecond,
    skipped,
    startLagsMs: startLags,
    timeline,
  };
}

/** Counts failed operations and keeps the first few distinct messages of rejected ones. */
class FailureLog {
  count = 0;
  readonly messages: string[] = [];

  async run(operation: Operation): Promise<boolean> {
    try {
      if (await operation()) {
        return true;
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (this.messages.length < MAX_FAILURE_MESSAGES && !this.messages.includes(message)) {
        this.messages.push(message);
      }
    }
    this.count += 1;
    return false;
  }
}

function summarize(latencies: number[], failures: FailureLog, seconds: number): LoopResult {
  latencies.sort((left, right) => left - right);
  return {
    completed: latencies.length,
    failed: failures.count,
    failureMessages: failures.messages,
    seconds,
    perSecond: latencies.length / seconds,
    latenciesMs: latencies,
  };
}

/** Returns the nearest-rank percentile of values sorted ascending, or NaN for no values. */
export function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) {
    return Number.NaN;
  }
  const rank = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(rank, 0)]!;
}
