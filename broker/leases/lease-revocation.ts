import { sql } from "drizzle-orm";
import type { RecordAudit } from "../audit/audit-writer.js";
import { type Executor, rowsOf } from "../db/database.js";
import { escapeLike } from "../db/like-pattern.js";

/** Scope of a bulk revocation: the live leases it covers. */
export type RevocationScope =
  | { leaseId: string }
  | { serviceAccountId: string }
  | { applicationId: string }
  | { secretId: string; version?: string; exceptVersion?: string }
  | { grantId: string }
  | { prefix: string };

/**
 * Revokes the live leases in `scope` and every live descendant of them, in the caller's
 * transaction, and records one audit event per revoked lease. Returns the revoked ids.
 * Leases already revoked or expired are left as they are. A lease with an upstream
 * credential is marked for upstream revocation, which runs after the commit
 * (`revokeUpstreamNow`) and is retried until it succeeds.
 */
export async function revokeLeases(
  tx: Executor,
  now: Date,
  record: RecordAudit,
  scope: RevocationScope,
  revokedBy: string,
  reason: string | null,
): Promise<string[]> {
  const at = now.toISOString();
  const result = await tx.execute(sql`
    with recursive targets as (
      select id from leases
      where ${scopeCondition(scope)}
        and revoked_at is null and expired_at is null and expires_at > ${at}::timestamptz
      union
      select child.id from leases child
      join targets on child.parent_lease_id = targets.id
      where child.revoked_at is null and child.expired_at is null and child.expires_at > ${at}::timestamptz
    )
    update leases set revoked_at = ${at}::timestamptz, revoked_by = ${revokedBy}, revoke_reason = ${reason},
      upstream_revoke_state = case when upstream_lease_id is not null then 'pending' else upstream_revoke_state end,
      upstream_revoke_next_at = case when upstream_lease_id is not null then ${at}::timestamptz else upstream_revoke_next_at end
    where id in (select id from targets)
    returning id, service_account_id, parent_lease_id, upstream_lease_id`);

  const revoked = rowsOf<{ id: string; service_account_id: string; parent_lease_id: string | null; upstream_lease_id: string | null }>(result);
  for (const lease of revoked) {
    record({
      action: "lease.revoke",
      target: lease.id,
      details: {
        service_account_id: lease.service_account_id,
        parent_lease_id: lease.parent_lease_id,
        reason,
        ...(lease.upstream_lease_id ? { upstream_lease_id: lease.upstream_lease_id } : {}),
      },
    });
  }
  return revoked.map((lease) => lease.id);
}

function scopeCondition(scope: RevocationScope) {
  if ("leaseId" in scope) return sql`id = ${scope.leaseId}`;
  if ("serviceAccountId" in scope) return sql`service_account_id = ${scope.serviceAccountId}`;
  if ("applicationId" in scope) return sql`application_id = ${scope.applicationId}`;
  if ("grantId" in scope) return sql`grant_id = ${scope.grantId}`;
  if ("secretId" in scope) {
    if (scope.version !== undefined) return sql`secret_id = ${scope.secretId} and secret_version = ${scope.version}`;
    if (scope.exceptVersion !== undefined) return sql`secret_id = ${scope.secretId} and secret_version is distinct from ${scope.exceptVersion}`;
    return sql`secret_id = ${scope.secretId}`;
  }
  return sql`id like ${`${escapeLike(scope.prefix)}%`}`;
}
