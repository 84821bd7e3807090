import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";
import { cpuUseSince, readProcessCpuSeconds, takeCpuSnapshot } from "../system-load.js";

/** Interval between samples of pg_stat_activity, in milliseconds. */
const ACTIVITY_SAMPLE_INTERVAL_MS = 50;

/** Where CPU time went during a run, in cores (1.0 is one core busy for the whole run). */
export interface CpuProfile {
  /** The benchmark process: load generator, and in in-process runs the work itself. */
  bench: number;
  /** The broker process, or undefined for in-process runs. */
  broker: number | undefined;
  /** PostgreSQL's processes, or undefined on PGlite or when /proc does not show them. */
  server: number | undefined;
  /** Every process on the machine, or undefined where /proc/stat is missing. */
  machine: number | undefined;
  /** The machine minus the processes above: other jobs on a shared machine. */
  other: number | undefined;
}

/** What one run looked like from outside: CPU use, and on PostgreSQL the states of the database's backends. */
export interface LoadProfile {
  cpu: CpuProfile;
  /**
   * Average number of the database's client backends in each state over the run, e.g.
   * "active, waiting on Lock:transactionid" or "idle in transaction"; empty on PGlite.
   */
  backendStates: Map<string, number>;
  activitySamples: number;
}

interface ActivityRow {
  state: string;
  backends: number;
}

/**
 * Starts measuring CPU use of this process, the broker process `brokerPid` and the
 * PostgreSQL server of `databaseUrl`, and samples pg_stat_activity of that database every
 * ACTIVITY_SAMPLE_INTERVAL_MS from a separate session until stopped.
 */
export async function startLoadProfile(options: { brokerPid?: number; databaseUrl?: string }): Promise<{ stop(): Promise<LoadProfile> }> {
  const session = options.databaseUrl ? postgres(options.databaseUrl, { max: 1, onnotice: () => undefined }) : undefined;
  const states = new Map<string, number>();
  let samples = 0;
  let running = true;

  const machineStart = await takeCpuSnapshot();
  const brokerStart = options.brokerPid ? await readProcessCpuSeconds(options.brokerPid) : undefined;
  const serverStart = session ? await serverCpuSeconds(session) : undefined;

  const sampling = (async () => {
    while (session && running) {
      const rows = await session<ActivityRow[]>`
        select case
                 when state = 'active' and wait_event is not null then 'active, waiting on ' || wait_event_type || ':' || wait_event
                 when state = 'active' then 'active, running'
                 else coalesce(state, 'unknown')
               end as state,
               count(*)::int as backends
          from pg_stat_activity
         where datname = current_database()
           and backend_type = 'client backend'
           and pid <> pg_backend_pid()
         group by 1`;
      samples += 1;
      for (const row of rows) {
        states.set(row.state, (states.get(row.state) ?? 0) + row.backends);
      }
      await sleep(ACTIVITY_SAMPLE_INTERVAL_MS);
    }
  })();

  return {
    async stop(): Promise<LoadProfile> {
      running = false;
      try {
        await sampling;
        const machine = await cpuUseSince(machineStart);
        const elapsedSeconds = (performance.now() - machineStart.atMs) / 1000;
        const brokerEnd = options.brokerPid ? await readProcessCpuSeconds(options.brokerPid) : undefined;
        const serverEnd = session ? await serverCpuSeconds(session) : undefined;

        const broker = brokerStart !== undefined && brokerEnd !== undefined ? (brokerEnd - brokerStart) / elapsedSeconds : undefined;
        const server = serverStart && serverEnd ? cpuSecondsBetween(serverStart, serverEnd) / elapsedSeconds : undefined;
        const known = machine.nodeCores + (broker ?? 0) + (server ?? 0);
        const averages = new Map([...states].map(([state, total]) => [state, total / Math.max(samples, 1)]));
        return {
          cpu: {
            bench: machine.nodeCores,
            broker,
            server,
            machine: machine.machineCores,
            other: machine.machineCores === undefined ? undefined : Math.max(0, machine.machineCores - known),
          },
          backendStates: averages,
          activitySamples: samples,
        };
      } finally {
        await session?.end({ timeout: 5 });
      }
    },
  };
}

/**
 * Reads the CPU time of the server processes that pg_stat_activity lists, by process id:
 * backends of every database and background processes such as the WAL writer, but not the
 * postmaster. Empty when the server runs where this machine's /proc does not reach.
 */
async function serverCpuSeconds(session: postgres.Sql): Promise<Map<number, number> | undefined> {
  const rows = await session<{ pid: number }[]>`select pid from pg_stat_activity where pid <> pg_backend_pid()`;
  const seconds = new Map<number, number>();
  for (const { pid } of rows) {
    const value = await readProcessCpuSeconds(pid);
    if (value !== undefined) {
      seconds.set(pid, value);
    }
  }
  return seconds.size > 0 ? seconds : undefined;
}

/** Adds up CPU time of processes seen at the end; one seen only at the end counts from zero, since it started during the run. */
function cpuSecondsBetween(start: Map<number, number>, end: Map<number, number>): number {
  let used = 0;
  for (const [pid, endSeconds] of end) {
    used += endSeconds - (start.get(pid) ?? 0);
  }
  return used;
}
