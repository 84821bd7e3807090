import { setTimeout as sleep } from "node:timers/promises";
import { and, inArray, isNull, sql } from "drizzle-orm";
import { SYSTEM_CONTEXT } from "../audit/audit-types.js";
import { auditedTransaction } from "../audit/audit-writer.js";
import { auditDeps } from "../http/auth-middleware.js";
import { rowsOf, type Tx } from "../db/database.js";
import { leases } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { loggableError } from "../logging/logger.js";

/**
 * Key of the transaction-level advisory lock that claims a sweep batch. The value is
 * arbitrary but must differ from every other advisory lock key used on the database.
 */
export const EXPIRY_SWEEP_LOCK_KEY = 7_421_044_305_118_200_001n;
/** Leases marked, and used assertion ids deleted, per transaction. */
export const DEFAULT_SWEEP_BATCH_SIZE = 500;
/**
 * Batches per run: a backlog larger than batch size times this drains over several runs.
 * With the pause below, one run can clear about 10,000 rows per second, well above the
 * issuance rate the broker sustains, so a steady load never leaves a growing backlog.
 */
export const DEFAULT_SWEEP_MAX_BATCHES = 200;
/** Pause between batches, so that requests get the database and the CPU between them, in milliseconds. */
export const DEFAULT_SWEEP_BATCH_PAUSE_MS = 20;

export type SweepDeps = Pick<BrokerDeps, "db" | "clock" | "log" | "metrics" | "auditChain">;

export interface SweepOptions {
  batchSize?: number;
  maxBatches?: number;
  pauseMs?: number;
  /** Stops the run between batches, e.g. on shutdown. */
  signal?: AbortSignal;
}

/** Outcome of one sweep run. */
export interface SweepResult {
  /** False when another replica held the sweep lock for the first batch, so this run did nothing. */
  claimed: boolean;
  /** Batches committed. */
  batches: number;
  leasesExpired: number;
  assertionsPurged: number;
  /** True when the last batch found less than a full batch of work, so no backlog remains. */
  drained: boolean;
}

/** A sweep batch that failed and was rolled back. Earlier batches of the same run stay committed. */
export class ExpirySweepFailed extends Error {
  override name = "ExpirySweepFailed";

  constructor(
    readonly batch: number,
    readonly firstLeaseId: string | null,
    readonly lastLeaseId: string | null,
    readonly leasesExpiredBefore: number,
    options: { cause: unknown },
  ) {
    super(`lease expiry sweep batch ${batch} failed and was rolled back`, options);
  }
}

interface BatchResult {
  claimed: boolean;
  leaseIds: string[];
  assertionsPurged: number;
}

/**
 * Marks live leases whose `expires_at` is at or before the clock's time as expired, and
 * deletes used client-assertion ids whose expiry has passed, in batches of `batchSize`
 * rows per transaction and at most `maxBatches` transactions, `pauseMs` apart. Each batch is claimed
 * with an advisory lock, so that one replica at a time sweeps, and skips rows locked by
 * requests in flight. Each batch of leases writes one `lease.expire` audit event in its
 * own transaction. Throws `ExpirySweepFailed` when a batch fails.
 */
export async function sweepExpiredLeases(deps: SweepDeps, options: SweepOptions = {}): Promise<SweepResult> {
  const batchSize = options.batchSize ?? DEFAULT_SWEEP_BATCH_SIZE;
  const maxBatches = options.maxBatches ?? DEFAULT_SWEEP_MAX_BATCHES;
  const pauseMs = options.pauseMs ?? DEFAULT_SWEEP_BATCH_PAUSE_MS;
  const log = deps.log.child({ module: "expiry-sweep" });
  const now = deps.clock.now();
  const result: SweepResult = { claimed: true, batches: 0, leasesExpired: 0, assertionsPurged: 0, drained: false };
  log.debug({ now: now.toISOString(), batchSize, maxBatches }, "lease expiry sweep started");

  while (result.batches < maxBatches && !options.signal?.aborted) {
    const batch = await runBatch(deps, now, batchSize, result);
    if (!batch.claimed) {
      // Another replica holds the lock: it sweeps now, and this replica tries again next run.
      result.claimed = result.batches > 0;
      break;
    }
    result.batches += 1;
    result.leasesExpired += batch.leaseIds.length;
    result.assertionsPurged += batch.assertionsPurged;
    deps.metrics.leasesExpired.inc(batch.leaseIds.length);
    if (batch.leaseIds.length < batchSize && batch.assertionsPurged < batchSize) {
      result.drained = true;
      break;
    }
    await pause(pauseMs, options.signal);
  }

  await refreshLiveLeaseGauge(deps, now, log);
  const message = result.claimed ? "lease expiry sweep finished" : "lease expiry sweep skipped because another replica holds the sweep lock";
  log.debug({ ...result }, message);
  return result;
}

async function runBatch(deps: SweepDeps, now: Date, batchSize: number, progress: SweepResult): Promise<BatchResult> {
  let leaseIds: string[] = [];
  try {
    return await auditedTransaction(
      auditDeps(deps),
      SYSTEM_CONTEXT,
      async (tx, record) => {
        if (!(await claimSweepLock(tx))) {
          return { claimed: false, leaseIds: [], assertionsPurged: 0 };
        }
        leaseIds = await expireLeases(tx, now, batchSize);
        const assertionsPurged = await purgeExpiredAssertions(tx, now, batchSize);
        if (leaseIds.length > 0) {
          // One event per batch: a backlog of thousands would otherwise flood the audit log.
          record({
            action: "lease.expire",
            target: null,
            details: { count: leaseIds.length, first_lease_id: leaseIds[0], last_lease_id: leaseIds.at(-1), expired_at: now.toISOString() },
          });
        }
        return { claimed: true, leaseIds, assertionsPurged };
      },
    );
  } catch (error) {
    throw new ExpirySweepFailed(progress.batches + 1, leaseIds[0] ?? null, leaseIds.at(-1) ?? null, progress.leasesExpired, { cause: error });
  }
}

function pause(milliseconds: number, signal: AbortSignal | undefined): Promise<void> {
  return sleep(milliseconds, undefined, { signal }).catch(() => undefined);
}

/** Takes the sweep lock until the transaction ends. Returns false when another transaction holds it. */
async function claimSweepLock(tx: Tx): Promise<boolean> {
  const result = await tx.execute(sql`select pg_try_advisory_xact_lock(${EXPIRY_SWEEP_LOCK_KEY.toString()}::bigint) as claimed`);
  return rowsOf<{ claimed: boolean }>(result)[0]?.claimed === true;
}

/** Marks up to `limit` due leases, oldest expiry first, and returns their ids in that order. */
async function expireLeases(tx: Tx, now: Date, limit: number): Promise<string[]> {
  const at = now.toISOString();
  const due = await tx.execute(sql`
    select id from leases
    where revoked_at is null and expired_at is null and expires_at <= ${at}::timestamptz
    order by expires_at, id
    limit ${limit}
    for update skip locked`);
  const ids = rowsOf<{ id: string }>(due).map((row) => row.id);
  if (ids.length > 0) {
    await tx
      .update(leases)
      .set({
        expiredAt: now,
        // An expired dynamic credential is revoked upstream too, as Vault does at lease expiry.
        upstreamRevokeState: sql`case when ${leases.upstreamLeaseId} is not null and ${leases.upstreamRevokeState} is null then 'pending' else ${leases.upstreamRevokeState} end`,
        upstreamRevokeNextAt: sql`case when ${leases.upstreamLeaseId} is not null and ${leases.upstreamRevokeState} is null then ${now.toISOString()}::timestamptz else ${leases.upstreamRevokeNextAt} end`,
      })
      .where(and(inArray(leases.id, ids), isNull(leases.revokedAt), isNull(leases.expiredAt)));
  }
  return ids;
}

/**
 * Deletes up to `limit` used assertion ids whose `expires_at` (the assertion's `exp`
 * plus the clock skew) is before `now`: such an assertion fails its `exp` check, so its
 * id no longer needs to be kept for replay detection.
 */
async function purgeExpiredAssertions(tx: Tx, now: Date, limit: number): Promise<number> {
  const result = await tx.execute(sql`
    with purged as (
      delete from used_assertions
      where (issuer, jti) in (
        select issuer, jti from used_assertions
        where expires_at < ${now.toISOString()}::timestamptz
        order by expires_at
        limit ${limit}
        for update skip locked)
      returning 1)
    select count(*)::int as purged from purged`);
  return rowsOf<{ purged: number }>(result)[0]?.purged ?? 0;
}

/** Sets the live-lease gauge. A failed count is logged and leaves the previous value. */
async function refreshLiveLeaseGauge(deps: SweepDeps, now: Date, log: SweepDeps["log"]): Promise<void> {
  try {
    const result = await deps.db.execute(sql`
      select count(*)::int as live from leases
      where revoked_at is null and expired_at is null and expires_at > ${now.toISOString()}::timestamptz`);
    deps.metrics.liveLeases.set(rowsOf<{ live: number }>(result)[0]?.live ?? 0);
  } catch (error) {
    log.warn({ err: loggableError(error) }, "failed to count live leases for the broker_leases_live gauge; it keeps its previous value");
  }
}
