import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";
import { readProcessCpuSeconds } from "./system-load.js";

/** Where the benchmark database's client backends were during a run, averaged over all samples. */
export interface ServerProfile {
  samples: number;
  /** Backends waiting for a heavyweight lock, such as the chain head row held by another transaction. */
  lockWaits: number;
  /** Backends writing or flushing WAL at commit, or waiting for the backend that does. */
  walWaits: number;
  /** Backends inside a transaction, waiting for the client's next statement. */
  idleInTransaction: number;
  /**
   * CPU use of the server's processes in cores, or undefined when their /proc entries
   * cannot be read because the server runs on another machine or in another container.
   */
  cpuCores: number | undefined;
}

/** Interval between samples of pg_stat_activity, in milliseconds. */
const SAMPLE_INTERVAL_MS = 50;

interface ActivityRow {
  lock_waits: number;
  wal_waits: number;
  idle_in_transaction: number;
}

/**
 * Samples pg_stat_activity of the database in `url` from a separate session until
 * stopped, and the CPU time of the server's processes, to show where the writers'
 * backends spend their time.
 */
export function startServerSampler(url: string): { stop(): Promise<ServerProfile> } {
  const session = postgres(url, { max: 1, onnotice: () => undefined });
  const totals = { samples: 0, lockWaits: 0, walWaits: 0, idleInTransaction: 0 };
  let running = true;

  const loop = (async () => {
    const cpuStart = await serverCpuSeconds(session);
    const startedAt = performance.now();

    while (running) {
      const [row] = await session<ActivityRow[]>`
        select count(*) filter (where wait_event_type = 'Lock')::int as lock_waits,
               count(*) filter (where wait_event in ('WALWrite', 'WALSync'))::int as wal_waits,
               count(*) filter (where state = 'idle in transaction')::int as idle_in_transaction
          from pg_stat_activity
         where datname = current_database()
           and backend_type = 'client backend'
           and pid <> pg_backend_pid()`;
      if (row) {
        totals.samples += 1;
        totals.lockWaits += row.lock_waits;
        totals.walWaits += row.wal_waits;
        totals.idleInTransaction += row.idle_in_transaction;
      }
      await sleep(SAMPLE_INTERVAL_MS);
    }

    const cpuEnd = await serverCpuSeconds(session);
    return cpuCoresBetween(cpuStart, cpuEnd, (performance.now() - startedAt) / 1000);
  })();

  return {
    async stop(): Promise<ServerProfile> {
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
        cpuCores,
      };
    },
  };
}

/**
 * Reads the CPU time of every server process that pg_stat_activity lists (backends of all
 * databases and background processes such as the WAL writer, but not the postmaster or the sampler's own backend),
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

/** Adds up the CPU time of processes seen at both ends, or returns undefined when either end saw none. */
function cpuCoresBetween(start: Map<number, number>, end: Map<number, number>, elapsedSeconds: number): number | undefined {
  if (start.size === 0 || end.size === 0) {
    return undefined;
  }
  let used = 0;
  for (const [pid, endSeconds] of end) {
    used += endSeconds - (start.get(pid) ?? endSeconds);
  }
  return used / elapsedSeconds;
}
