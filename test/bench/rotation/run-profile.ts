import { cpuUseSince, readProcessCpuSeconds, takeCpuSnapshot } from "../system-load.js";
import { type ActivityProfile, startActivitySampler } from "./activity-sampler.js";

/** CPU use in cores during one timed run, and on PostgreSQL where the database's backends were. */
export interface RunProfile {
  seconds: number;
  /** This Node.js process: the baseline's transactions, or on PGlite the whole broker and database. */
  benchCores: number;
  /** The `serve` processes together, or undefined when none ran. */
  brokerCores: number | undefined;
  /** PostgreSQL only: the server's CPU use, the wait states of this database's backends and the statements that waited for a lock. */
  server: ActivityProfile | undefined;
  /** Every other process on the machine, or undefined where /proc is missing. */
  otherCores: number | undefined;
}

/**
 * Runs `work` while measuring CPU use of this process, of `brokerPids` and of the whole
 * machine, and, when `sampleUrl` is set, sampling the PostgreSQL server of that
 * database. Returns the work's value and the profile of its run.
 */
export async function profiled<T>(target: { sampleUrl: string | undefined; brokerPids: number[] }, work: () => Promise<T>): Promise<{ value: T; profile: RunProfile }> {
  const sampler = target.sampleUrl ? startActivitySampler(target.sampleUrl) : undefined;
  await sampler?.ready;
  const brokerStart = await brokerCpuSeconds(target.brokerPids);
  const cpuStart = await takeCpuSnapshot();
  const startedAt = performance.now();

  let value: T;
  try {
    value = await work();
  } catch (error) {
    await sampler?.stop().catch(() => undefined);
    throw error;
  }

  const seconds = (performance.now() - startedAt) / 1000;
  const cpu = await cpuUseSince(cpuStart);
  const brokerEnd = await brokerCpuSeconds(target.brokerPids);
  const server = await sampler?.stop();
  const brokerCores = target.brokerPids.length > 0 && brokerStart !== undefined && brokerEnd !== undefined ? (brokerEnd - brokerStart) / seconds : undefined;
  const otherCores = cpu.machineCores === undefined ? undefined : Math.max(0, cpu.machineCores - cpu.nodeCores - (brokerCores ?? 0) - (server?.cpuCores ?? 0));
  return { value, profile: { seconds, benchCores: cpu.nodeCores, brokerCores, server, otherCores } };
}

/** Adds up the CPU time of the given processes, or returns undefined when any cannot be read. */
async function brokerCpuSeconds(pids: number[]): Promise<number | undefined> {
  let total = 0;
  for (const pid of pids) {
    const seconds = await readProcessCpuSeconds(pid);
    if (seconds === undefined) {
      return undefined;
    }
    total += seconds;
  }
  return total;
}
