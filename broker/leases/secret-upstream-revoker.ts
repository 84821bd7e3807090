import { and, eq, inArray, lte, sql } from "drizzle-orm";
import type { RevokedAll } from "../../adapters/contract.js";
import { SYSTEM_CONTEXT } from "../audit/audit-types.js";
import { auditedTransaction } from "../audit/audit-writer.js";
import { leases } from "../db/schema.js";
import { auditDeps } from "../http/auth-middleware.js";
import { loggableError } from "../logging/logger.js";
import { localSecretReader } from "../secrets/local-secret-reader.js";
import { type SecretRow, toSecretRef } from "../secrets/secret-views.js";
import { findSecret } from "../secrets/secrets-service.js";
import {
  type ClaimedLease,
  recordFailure,
  type RevokerDeps,
  revokeUpstreamNow,
  UPSTREAM_REVOKE_CLAIM_MS,
  type UpstreamRevokeSummary,
} from "./upstream-revoker.js";

/**
 * Revokes upstream the credentials of `leaseIds`, which are every live lease of secret
 * `secretId` that one transaction just revoked (the secret was deleted). Where the
 * adapter can end all of the secret's upstream credentials with one request
 * (`revokeAll`, such as a Vault role dedicated to the broker), that request replaces the
 * call per lease. Leases outside what it ended, and every lease of an adapter or secret
 * without it, are revoked one by one. When the request fails, the leases show
 * `revoke_failed` and the retry job revokes them one by one, as after any failed attempt.
 */
export async function revokeSecretUpstreamNow(deps: RevokerDeps, secretId: string, leaseIds: string[]): Promise<UpstreamRevokeSummary> {
  if (leaseIds.length === 0) {
    return revokeUpstreamNow(deps, leaseIds);
  }
  const secret = await findSecret(deps.db, secretId);
  if (!deps.adapters.get(secret.adapter).revokeAll) {
    return revokeUpstreamNow(deps, leaseIds);
  }

  const claimed = await claimLeases(deps, leaseIds);
  const unclaimed = leaseIds.length - claimed.length;
  let revokedAll: RevokedAll | null;
  try {
    revokedAll = await deps.adapters.call(secret.adapter, toSecretRef(secret), "revoke_all", localSecretReader(deps), (adapter, call) => adapter.revokeAll!(call));
  } catch (error) {
    deps.log.warn({ module: "upstream-revoker", secretId, leases: claimed.length, err: loggableError(error) }, "revoking all upstream credentials of the secret failed; each lease will be retried");
    for (const lease of claimed) {
      await recordFailure(deps, lease, error);
    }
    return { revoked: 0, failed: claimed.length, pending: unclaimed };
  }

  const prefix = revokedAll?.upstreamLeaseIdPrefix;
  const covered = prefix === undefined ? [] : claimed.filter((lease) => lease.upstream_lease_id.startsWith(prefix));
  const rest = claimed.filter((lease) => !covered.includes(lease));
  if (prefix !== undefined && covered.length > 0) {
    await recordRevokedAll(deps, secret, covered, prefix);
  }
  await releaseClaims(deps, rest);
  const oneByOne = await revokeUpstreamNow(deps, rest.map((lease) => lease.id));
  return { revoked: covered.length + oneByOne.revoked, failed: oneByOne.failed, pending: oneByOne.pending + unclaimed };
}

/** Claims the leases whose upstream revocation is pending, as a single attempt would, so that the retry job leaves them alone meanwhile. */
async function claimLeases(deps: RevokerDeps, leaseIds: string[]): Promise<ClaimedLease[]> {
  const now = deps.clock.now();
  const rows = await deps.db
    .update(leases)
    .set({ upstreamRevokeNextAt: new Date(now.getTime() + UPSTREAM_REVOKE_CLAIM_MS) })
    .where(and(inArray(leases.id, leaseIds), eq(leases.upstreamRevokeState, "pending"), lte(leases.upstreamRevokeNextAt, now)))
    .returning({
      id: leases.id,
      secretId: leases.secretId,
      adapter: leases.adapter,
      upstreamLeaseId: leases.upstreamLeaseId,
      attempts: leases.upstreamRevokeAttempts,
      serviceAccountId: leases.serviceAccountId,
    });
  return rows.map((row) => ({
    id: row.id,
    secret_id: row.secretId!,
    adapter: row.adapter!,
    upstream_lease_id: row.upstreamLeaseId!,
    upstream_revoke_attempts: row.attempts,
    service_account_id: row.serviceAccountId,
  }));
}

/** Makes claimed leases due again, for the attempts one by one that follow at once. */
async function releaseClaims(deps: RevokerDeps, claimed: ClaimedLease[]): Promise<void> {
  if (claimed.length === 0) {
    return;
  }
  const ids = claimed.map((lease) => lease.id);
  await deps.db
    .update(leases)
    .set({ upstreamRevokeNextAt: deps.clock.now() })
    .where(and(inArray(leases.id, ids), eq(leases.upstreamRevokeState, "pending")));
}

/** Marks the leases revoked upstream by the one request, with an audit event per lease, as a revocation one by one records them. */
async function recordRevokedAll(deps: RevokerDeps, secret: SecretRow, covered: ClaimedLease[], prefix: string): Promise<void> {
  deps.metrics.upstreamRevocations.inc({ adapter: secret.adapter, outcome: "revoked" }, covered.length);
  await auditedTransaction(auditDeps(deps), SYSTEM_CONTEXT, async (tx, record) => {
    await tx
      .update(leases)
      .set({ upstreamRevokeState: "done", upstreamRevokeNextAt: null, upstreamRevokeError: null, upstreamRevokeAttempts: sql`${leases.upstreamRevokeAttempts} + 1` })
      .where(inArray(leases.id, covered.map((lease) => lease.id)));
    for (const lease of covered) {
      record({
        action: "lease.upstream_revoke",
        target: lease.id,
        details: {
          service_account_id: lease.service_account_id,
          secret_id: secret.id,
          upstream_lease_id: lease.upstream_lease_id,
          attempts: lease.upstream_revoke_attempts + 1,
          revoked_with_prefix: prefix,
        },
      });
    }
  });
  deps.log.info({ module: "upstream-revoker", secretId: secret.id, prefix, leases: covered.length }, "upstream credentials of the secret revoked with one request");
}
