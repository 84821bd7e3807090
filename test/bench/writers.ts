import { type ServerProfile, startServerSampler } from "./server-sampler.js";
import { type CpuUse, cpuUseSince, takeCpuSnapshot } from "./system-load.js";

/** Writes one event in its own transaction. `count` numbers the writer's events from 0. */
export type WriteEvent = (writer: number, count: number) => Promise<void>;

/** What one timed run of concurrent writers achieved. */
export interface WriterRun {
  writers: number;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  /** Time per transaction, from its start to its commit as the writer measures it, in milliseconds. */
  latencyMs: { p50: number; p99: number };
  cpu: CpuUse;
  /** PostgreSQL only: where the writers' backends were while the run lasted, and the server's CPU use. */
  server: ServerProfile | undefined;
}

export interface RunOptions {
  writers: number;
  durationMs: number;
  write: WriteEvent;
  /** When set, the server of this database is sampled during the run. */
  sampleUrl?: string | undefined;
  /** Runs after the last write and before the clock stops, such as waiting for the chainer to link every event. */
  settle?: (() => Promise<void>) | undefined;
}

/**
 * Starts `writers` loops that each write one event per transaction until `durationMs` has
 * passed, then waits for the transactions in flight and for `settle`. Throughput is the
 * number of committed events divided by the time until the last one committed and settled.
 */
export async function runWriters(options: RunOptions): Promise<WriterRun> {
  const latencies: number[] = [];
  const sampler = options.sampleUrl ? startServerSampler(options.sampleUrl) : undefined;
  const cpuStart = await takeCpuSnapshot();
  const startedAt = performance.now();
  const deadline = startedAt + options.durationMs;

  const writerLoop = async (writer: number) => {
    for (let count = 0; performance.now() < deadline; count += 1) {
      const begin = performance.now();
      await options.write(writer, count);
      latencies.push(performance.now() - begin);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.writers }, (_, writer) => writerLoop(writer)));
    await options.settle?.();
  } catch (error) {
    await sampler?.stop().catch(() => undefined);
    throw error;
  }

  const seconds = (performance.now() - startedAt) / 1000;
  const cpu = await cpuUseSince(cpuStart);
  const server = await sampler?.stop();
  latencies.sort((left, right) => left - right);
  return {
    writers: options.writers,
    events: latencies.length,
    seconds,
    eventsPerSecond: latencies.length / seconds,
    latencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) },
    cpu,
    server,
  };
}

/** Returns the nearest-rank percentile of values sorted in ascending order, or NaN for no values. */
function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) {
    return Number.NaN;
  }
  const rank = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(rank, 0)]!;
}

/** Returns the run with the median throughput, or the lower middle run for an even count. */
export function medianRun(runs: WriterRun[]): WriterRun {
  const sorted = [...runs].sort((left, right) => left.eventsPerSecond - right.eventsPerSecond);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  if (!median) {
    throw new Error("medianRun needs at least one run");
  }
  return median;
}

/** CPU use of processes outside the benchmark and the server, in cores, above which a run counts as skewed. */
export const SKEWED_OTHER_CORES = 0.25;

/** Returns the machine's CPU use during a run minus that of this process and of the server, in cores. */
export function otherCoresOf(run: WriterRun): number | undefined {
  if (run.cpu.machineCores === undefined) {
    return undefined;
  }
  return Math.max(0, run.cpu.machineCores - run.cpu.nodeCores - (run.server?.cpuCores ?? 0));
}
