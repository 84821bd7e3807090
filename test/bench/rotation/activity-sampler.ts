import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";
import { readProcessCpuSeconds } from "../system-load.js";

/** Interval between samples of pg_stat_activity, in milliseconds. */
const SAMPLE_INTERVAL_MS = 50;
/** Characters of a waiting statement kept to group the samples, after whitespace is collapsed. */
const STATEMENT_PREFIX_CHARS = 60;

/** A statement that backends of the database waited in for a lock, and in how many samples of one backend each. */
export interface LockWait {
  statement: string;
  /** Backend-samples spent waiting in this statement. Divided by `samples`, it is the average number of backends waiting. */
  backendSamples: number;
}

/** Where the database's client backends were during a run, averaged over the samples, and the server's CPU use. */
export interface ActivityProfile {
  samples: number;
  /** Backends waiting for a heavyweight lock, which includes waiting for another transaction's row lock. */
  lockWaits: number;
  /** Backends writing or flushing WAL at commit, or waiting for the backend that does. */
  walWaits: number;
  /** Backends inside a transaction, waiting for the client's next statement. */
  idleInTransaction: number;
  /** Statements that backends waited in for a lock, by backend-samples, largest first. */
  waits: LockWait[];
  /**
   * CPU use of the server's processes in cores, or undefined when their /proc entries
   * cannot be read because the server runs on another machine or in another container.
   */
  cpuCores: number | undefined;
}

interface ActivityRow {
  state: string | null;
  wait_event_type: string | null;
  wait_event: string | null;
  query: string;
}

/**
 * Samples pg_stat_activity of the database in `url` from a separate session until
 * stopped, and reads the CPU time of the server's processes at both ends. `ready`
 * resolves once the session is connected and the first CPU reading is taken, so that a
 * caller can start the timed work only then.
 *
 * Like the sampler of the audit benchmark (test/bench/server-sampler.ts), it counts lock,
 * WAL and idle-in-transaction backends. It also groups the statements that waited for a
 * lock and counts the CPU time of backends that started during the run. It exposes
 * `ready` because a run of a few hundred milliseconds can otherwise end before the
 * sampler's session has connected.
 */
export function startActivitySampler(url: string): { ready: Promise<void>; stop(): Promise<ActivityProfile> } {
  const session = postgres(url, { max: 1, onnotice: () => undefined });
  const totals = { samples: 0, lockWaits: 0, walWaits: 0, idleInTransaction: 0 };
  const waits = new Map<string, number>();
  let running = true;
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const loop = (async () => {
    const cpuStart = await serverCpuSeconds(session);
    const startedAt = performance.now();
    markReady();

    while (running) {
      const rows = await session<ActivityRow[]>`
        select state, wait_event_type, wait_event, query from pg_stat_activity
        where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()`;
      totals.samples += 1;
      for (const row of rows) {
        totals.idleInTransaction += row.state === "idle in transaction" ? 1 : 0;
        totals.walWaits += row.wait_event === "WALWrite" || row.wait_event === "WALSync" ? 1 : 0;
        if (row.wait_event_type === "Lock") {
          totals.lockWaits += 1;
          const statement = row.query.replace(/\s+/g, " ").trim().slice(0, STATEMENT_PREFIX_CHARS);
          waits.set(statement, (waits.get(statement) ?? 0) + 1);
        }
      }
      await sleep(SAMPLE_INTERVAL_MS);
    }

    const cpuEnd = await serverCpuSeconds(session);
    return cpuCoresBetween(cpuStart, cpuEnd, (performance.now() - startedAt) / 1000);
  })();
  // A failed start must not leave `ready` pending. stop() raises the error.
  loop.catch(() => markReady());

  return {
    ready,
    async stop(): Promise<ActivityProfile> {
      running = false;
      let cpuCores: number | undefined;
      try {
        cpuCores = await loop;
      } finally {
        await session.end({ timeout: 5 });
      }
      const samples = Math.max(totals.samples, 1);
      return {
        samples: totals.samples,
        lockWaits: totals.lockWaits / samples,
        walWaits: totals.walWaits / samples,
        idleInTransaction: totals.idleInTransaction / samples,
        waits: [...waits].map(([statement, backendSamples]) => ({ statement, backendSamples })).sort((left, right) => right.backendSamples - left.backendSamples),
        cpuCores,
      };
    },
  };
}

/**
 * Reads the CPU time of every server process that pg_stat_activity lists (backends of all
 * databases and background processes such as the WAL writer, but not the postmaster),
 * by process id. A process missing from /proc is left out.
 */
async function serverCpuSeconds(session: postgres.Sql): Promise<Map<number, number>> {
  const rows = await session<{ pid: number }[]>`select pid from pg_stat_activity where pid <> pg_backend_pid()`;
  const seconds = new Map<number, number>();
  for (const { pid } of rows) {
    const value = await readProcessCpuSeconds(pid);
    if (value !== undefined) {
      seconds.set(pid, value);
    }
  }
  return seconds;
}

/**
 * Adds up the CPU time of the processes seen at the end, counting from 0 a process that
 * started during the run, or returns undefined when either end saw none.
 */
function cpuCoresBetween(start: Map<number, number>, end: Map<number, number>, elapsedSeconds: number): number | undefined {
  if (start.size === 0 || end.size === 0) {
    return undefined;
  }
  let used = 0;
  for (const [pid, endSeconds] of end) {
    used += endSeconds - (start.get(pid) ?? 0);
  }
  return used / elapsedSeconds;
}
