import { sql } from "drizzle-orm";
import type { RecordAudit } from "../audit/audit-writer.js";
import { type Executor, rowsOf } from "../db/database.js";

/** Which live leases a bulk revocation covers; exactly one field is set. */
export type RevocationScope =
  | { leaseId: string }
  | { serviceAccountId: string }
  | { applicationId: string }
  | { prefix: string };

/**
 * Revokes the live leases in `scope` and every live descendant of them, in the caller's
 * transaction, and records one audit event per revoked lease. Returns the revoked ids.
 * Leases already revoked or expired are left as they are.
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
    update leases set revoked_at = ${at}::timestamptz, revoked_by = ${revokedBy}, revoke_reason = ${reason}
    where id in (select id from targets)
    returning id, service_account_id, parent_lease_id`);

  const revoked = rowsOf<{ id: string; service_account_id: string; parent_lease_id: string | null }>(result);
  for (const lease of revoked) {
    record({
      action: "lease.revoke",
      target: lease.id,
      details: { service_account_id: lease.service_account_id, parent_lease_id: lease.parent_lease_id, reason },
    });
  }
  return revoked.map((lease) => lease.id);
}

function scopeCondition(scope: RevocationScope) {
  if ("leaseId" in scope) return sql`id = ${scope.leaseId}`;
  if ("serviceAccountId" in scope) return sql`service_account_id = ${scope.serviceAccountId}`;
  if ("applicationId" in scope) return sql`application_id = ${scope.applicationId}`;
  return sql`id like ${`${escapeLike(scope.prefix)}%`}`;
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (character) => `\\${character}`);
}
