import { readFile } from "node:fs/promises";
import { cpus } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";

/** CPU counters at one instant, to subtract from a later snapshot. */
export interface CpuSnapshot {
  process: NodeJS.CpuUsage;
  machine: MachineTicks | undefined;
  atMs: number;
}

interface MachineTicks {
  busy: number;
  total: number;
}

/** CPU use between a snapshot and now, in cores: 1.0 is one core busy for the whole time. */
export interface CpuUse {
  /** This Node.js process: writers, driver, and on PGlite the database itself. */
  nodeCores: number;
  /** Every process on the machine, or undefined where /proc/stat is missing. */
  machineCores: number | undefined;
}

/** Clock ticks per second in /proc: USER_HZ, which is 100 on x86 and arm Linux (asm-generic/param.h). */
const PROC_TICKS_PER_SECOND = 100;

export async function takeCpuSnapshot(): Promise<CpuSnapshot> {
  return { process: process.cpuUsage(), machine: await readMachineTicks(), atMs: performance.now() };
}

export async function cpuUseSince(start: CpuSnapshot): Promise<CpuUse> {
  const elapsedMicros = (performance.now() - start.atMs) * 1000;
  const processUse = process.cpuUsage(start.process);
  const machine = await readMachineTicks();
  const machineCores =
    machine && start.machine && machine.total > start.machine.total
      ? (coreCount() * (machine.busy - start.machine.busy)) / (machine.total - start.machine.total)
      : undefined;
  return { nodeCores: (processUse.user + processUse.system) / elapsedMicros, machineCores };
}

/** CPU use, in cores, below which the machine counts as idle before a run. */
const IDLE_BELOW_CORES = 0.2;
/** Window over which machine CPU use is measured while waiting for an idle machine, in milliseconds. */
const IDLE_WINDOW_MS = 1000;

/**
 * Waits until the machine's CPU use over one window stays below IDLE_BELOW_CORES, for at
 * most `maxSeconds`. Returns false when the machine was still busy at the deadline, or
 * when /proc/stat is missing.
 */
export async function waitForIdleMachine(maxSeconds: number): Promise<boolean> {
  const deadline = performance.now() + maxSeconds * 1000;
  while (performance.now() < deadline) {
    const start = await readMachineTicks();
    await sleep(IDLE_WINDOW_MS);
    const end = await readMachineTicks();
    if (!start || !end || end.total <= start.total) {
      return false;
    }
    const busyCores = (coreCount() * (end.busy - start.busy)) / (end.total - start.total);
    if (busyCores < IDLE_BELOW_CORES) {
      return true;
    }
  }
  return false;
}

export function coreCount(): number {
  return cpus().length;
}

/** Reads the first line of /proc/stat (Linux): ticks per state summed over all cores. */
async function readMachineTicks(): Promise<MachineTicks | undefined> {
  const text = await readProcFile("/proc/stat");
  if (text === undefined) {
    return undefined;
  }
  const fields = text.split("\n", 1)[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  // Fields: user nice system idle iowait irq softirq steal. Idle and iowait count as not busy.
  const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** Reads the user and system CPU time of process `pid` from /proc/<pid>/stat, in seconds. */
export async function readProcessCpuSeconds(pid: number): Promise<number | undefined> {
  const text = await readProcFile(`/proc/${pid}/stat`);
  if (text === undefined) {
    return undefined;
  }
  // The command name in brackets may contain spaces, so fields are counted after its ")".
  // Field 3 (state) comes first there, which puts utime (field 14) at index 11.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks / PROC_TICKS_PER_SECOND : undefined;
}

async function readProcFile(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch {
    return undefined;
  }
}
