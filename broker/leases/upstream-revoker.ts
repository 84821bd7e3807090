import { and, eq, inArray, sql } from "drizzle-orm";
import { SYSTEM_CONTEXT } from "../audit/audit-types.js";
import { auditedTransaction } from "../audit/audit-writer.js";
import { rowsOf } from "../db/database.js";
import { leases } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { auditDeps } from "../http/auth-middleware.js";
import { loggableError } from "../logging/logger.js";
import { localSecretReader } from "../secrets/local-secret-reader.js";
import { toSecretRef } from "../secrets/secret-views.js";
import { findSecret } from "../secrets/secrets-service.js";

/** Retry backoff of upstream revocations: 10 s, doubling per failed attempt, at most 1 hour. */
export const UPSTREAM_REVOKE_BASE_DELAY_MS = 10_000;
export const UPSTREAM_REVOKE_MAX_DELAY_MS = 60 * 60 * 1000;
/** Each delay is spread by up to this fraction either way, so that replicas and leases do not retry in step. */
export const UPSTREAM_REVOKE_JITTER = 0.5;
/**
 * How long a claimed attempt keeps other replicas away from the lease. Longer than any
 * adapter timeout, so that a slow attempt is not run twice at once.
 */
export const UPSTREAM_REVOKE_CLAIM_MS = 2 * 60 * 1000;
/** Attempts run at once, by one request or one retry tick. */
export const UPSTREAM_REVOKE_CONCURRENCY = 8;
/** Leases a retry tick looks at. */
export const UPSTREAM_REVOKE_BATCH_SIZE = 200;
/** A request that revoked leases waits this long for their upstream revocations; the rest is left to the retry tick. */
export const UPSTREAM_REVOKE_INLINE_BUDGET_MS = 5_000;

export type RevokerDeps = Pick<BrokerDeps, "db" | "clock" | "log" | "metrics" | "adapters" | "dataKeys" | "config" | "auditChain">;

export interface UpstreamRevokeSummary {
  revoked: number;
  failed: number;
  /** Leases not attempted, left to the retry tick (another replica held them, or the time budget ran out). */
  pending: number;
}

/** Delay before retry number `attempts + 1`, with jitter; `random` returns a number in [0, 1). */
export function upstreamRevokeDelayMs(attempts: number, random: () => number = Math.random): number {
  const base = Math.min(UPSTREAM_REVOKE_BASE_DELAY_MS * 2 ** Math.max(0, attempts - 1), UPSTREAM_REVOKE_MAX_DELAY_MS);
  return Math.round(base * (1 - UPSTREAM_REVOKE_JITTER + 2 * UPSTREAM_REVOKE_JITTER * random()));
}

/**
 * Revokes upstream the credentials of the given leases (those that have one pending),
 * for up to `UPSTREAM_REVOKE_INLINE_BUDGET_MS`. An adapter failure is recorded on the
 * lease, which then shows `revoke_failed` until a retry succeeds; only a failing database
 * read or write throws.
 */
export async function revokeUpstreamNow(deps: RevokerDeps, leaseIds: string[]): Promise<UpstreamRevokeSummary> {
  if (leaseIds.length === 0) {
    return { revoked: 0, failed: 0, pending: 0 };
  }
  const rows = await deps.db
    .select({ id: leases.id })
    .from(leases)
    .where(and(inArray(leases.id, leaseIds), eq(leases.upstreamRevokeState, "pending")));
  const due = rows.map((row) => row.id);
  return attemptAll(deps, due, performance.now() + UPSTREAM_REVOKE_INLINE_BUDGET_MS);
}

/** Runs one retry tick: attempts every lease whose upstream revocation is due, then refreshes the gauge. */
export async function retryUpstreamRevocations(deps: RevokerDeps, signal?: AbortSignal): Promise<UpstreamRevokeSummary> {
  const now = deps.clock.now().toISOString();
  const due = rowsOf<{ id: string }>(
    await deps.db.execute(sql`
      select id from leases
      where upstream_revoke_state in ('pending', 'failed') and upstream_revoke_next_at <= ${now}::timestamptz
      order by upstream_revoke_next_at, id
      limit ${UPSTREAM_REVOKE_BATCH_SIZE}`),
  ).map((row) => row.id);
  const summary = await attemptAll(deps, due, Number.POSITIVE_INFINITY, signal);
  await refreshRevokeFailedGauge(deps);
  if (due.length > 0) {
    deps.log.info({ module: "upstream-revoker", ...summary }, "upstream revocation retries finished");
  }
  return summary;
}

async function attemptAll(deps: RevokerDeps, leaseIds: string[], deadline: number, signal?: AbortSignal): Promise<UpstreamRevokeSummary> {
  const summary: UpstreamRevokeSummary = { revoked: 0, failed: 0, pending: 0 };
  const queue = [...leaseIds];
  async function worker(): Promise<void> {
    for (let leaseId = queue.shift(); leaseId; leaseId = queue.shift()) {
      if (performance.now() > deadline || signal?.aborted) {
        summary.pending += 1;
        continue;
      }
      const outcome = await attemptUpstreamRevoke(deps, leaseId);
      summary[outcome] += 1;
    }
  }
  await Promise.all(Array.from({ length: Math.min(UPSTREAM_REVOKE_CONCURRENCY, leaseIds.length) }, worker));
  return summary;
}

/** A lease whose upstream revocation this process claimed, with what recording its outcome needs. */
export interface ClaimedLease {
  id: string;
  secret_id: string;
  adapter: string;
  upstream_lease_id: string;
  upstream_revoke_attempts: number;
  service_account_id: string;
}

/**
 * Attempts the upstream revocation of one lease. The claim moves `upstream_revoke_next_at` forward in one
 * statement, so that of several replicas exactly one attempts the lease at a time.
 */
export async function attemptUpstreamRevoke(deps: RevokerDeps, leaseId: string): Promise<"revoked" | "failed" | "pending"> {
  const now = deps.clock.now();
  const claimed = rowsOf<ClaimedLease>(
    await deps.db.execute(sql`
      update leases set upstream_revoke_next_at = ${new Date(now.getTime() + UPSTREAM_REVOKE_CLAIM_MS).toISOString()}::timestamptz
      where id = ${leaseId} and upstream_revoke_state in ('pending', 'failed') and upstream_revoke_next_at <= ${now.toISOString()}::timestamptz
      returning id, secret_id, adapter, upstream_lease_id, upstream_revoke_attempts, service_account_id`),
  )[0];
  if (!claimed) {
    return "pending";
  }

  const log = deps.log.child({ module: "upstream-revoker", leaseId, secretId: claimed.secret_id, upstreamLeaseId: claimed.upstream_lease_id });
  try {
    const secret = await findSecret(deps.db, claimed.secret_id);
    await deps.adapters.call(claimed.adapter, toSecretRef(secret), "revoke", localSecretReader(deps), (adapter, call) =>
      adapter.revoke(call, { upstreamLeaseId: claimed.upstream_lease_id }),
    );
  } catch (error) {
    await recordFailure(deps, claimed, error);
    log.warn({ err: loggableError(error), attempts: claimed.upstream_revoke_attempts + 1 }, "upstream revocation failed; it will be retried");
    return "failed";
  }
  await recordSuccess(deps, claimed);
  log.info({ attempts: claimed.upstream_revoke_attempts + 1 }, "upstream credential revoked");
  return "revoked";
}

async function recordSuccess(deps: RevokerDeps, lease: ClaimedLease): Promise<void> {
  deps.metrics.upstreamRevocations.inc({ adapter: lease.adapter, outcome: "revoked" });
  await auditedTransaction(auditDeps(deps), SYSTEM_CONTEXT, async (tx, record) => {
    await tx.execute(sql`
      update leases set upstream_revoke_state = 'done', upstream_revoke_next_at = null, upstream_revoke_error = null,
        upstream_revoke_attempts = upstream_revoke_attempts + 1
      where id = ${lease.id}`);
    record({
      action: "lease.upstream_revoke",
      target: lease.id,
      details: { service_account_id: lease.service_account_id, secret_id: lease.secret_id, upstream_lease_id: lease.upstream_lease_id, attempts: lease.upstream_revoke_attempts + 1 },
    });
  });
}

/** Records a failed attempt: the lease shows `revoke_failed` and is retried after the backoff. */
export async function recordFailure(deps: RevokerDeps, lease: ClaimedLease, error: unknown): Promise<void> {
  deps.metrics.upstreamRevocations.inc({ adapter: lease.adapter, outcome: "failed" });
  const attempts = lease.upstream_revoke_attempts + 1;
  const nextAt = new Date(deps.clock.now().getTime() + upstreamRevokeDelayMs(attempts));
  const message = error instanceof Error ? error.message : "unknown error";
  await auditedTransaction(auditDeps(deps), SYSTEM_CONTEXT, async (tx, record) => {
    await tx.execute(sql`
      update leases set upstream_revoke_state = 'failed', upstream_revoke_attempts = ${attempts},
        upstream_revoke_next_at = ${nextAt.toISOString()}::timestamptz, upstream_revoke_error = ${message}
      where id = ${lease.id}`);
    record({
      action: "lease.upstream_revoke",
      target: lease.id,
      outcome: "failure",
      details: {
        service_account_id: lease.service_account_id,
        secret_id: lease.secret_id,
        upstream_lease_id: lease.upstream_lease_id,
        attempts,
        error: message,
        next_attempt_at: nextAt.toISOString(),
      },
    });
  });
}

async function refreshRevokeFailedGauge(deps: RevokerDeps): Promise<void> {
  try {
    const result = await deps.db.execute(sql`select count(*)::int as failed from leases where upstream_revoke_state = 'failed'`);
    deps.metrics.revokeFailedLeases.set(rowsOf<{ failed: number }>(result)[0]?.failed ?? 0);
  } catch (error) {
    deps.log.warn({ err: loggableError(error) }, "failed to count leases in revoke_failed; the gauge keeps its previous value");
  }
}
