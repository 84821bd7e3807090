import type { leases } from "../db/schema.js";

export type LeaseRow = typeof leases.$inferSelect;

/** Lease kinds: an access token from the token endpoint, or a credential for an upstream secret. */
export const ACCESS_TOKEN_LEASE = "access_token";
export const CREDENTIAL_LEASE = "credential";
export type LeaseStatus = "active" | "expired" | "revoked";
/** Status in listings: the lifecycle status, or `revoke_failed` while an ended lease's upstream credential still exists. */
export type LeaseViewStatus = LeaseStatus | "revoke_failed";

/** A lease's status at `now`: revoked wins over expired, and expiry needs no sweep to count. */
export function leaseStatus(lease: LeaseRow, now: Date): LeaseStatus {
  if (lease.revokedAt) return "revoked";
  if (lease.expiredAt || lease.expiresAt <= now) return "expired";
  return "active";
}

export function leaseViewStatus(lease: LeaseRow, now: Date): LeaseViewStatus {
  return lease.upstreamRevokeState === "failed" ? "revoke_failed" : leaseStatus(lease, now);
}

/** Progress of the revocation of a lease's upstream credential. */
export interface UpstreamRevokeView {
  state: "pending" | "done" | "failed";
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
}

/** A lease as the API shows it. */
export interface LeaseView {
  id: string;
  kind: string;
  status: LeaseViewStatus;
  service_account_id: string;
  application_id: string;
  parent_lease_id: string | null;
  audience: string | null;
  scopes: string[];
  grant_type: string;
  client_kid: string | null;
  subject_issuer: string | null;
  subject: string | null;
  issued_at: string;
  expires_at: string;
  max_expires_at: string;
  last_renewed_at: string | null;
  renew_count: number;
  revoked_at: string | null;
  revoked_by: string | null;
  revoke_reason: string | null;
  source_address: string | null;
  secret_id: string | null;
  secret_version: string | null;
  grant_id: string | null;
  adapter: string | null;
  upstream_lease_id: string | null;
  upstream_revoke: UpstreamRevokeView | null;
}

export function toLeaseView(lease: LeaseRow, now: Date): LeaseView {
  return {
    id: lease.id,
    kind: lease.kind,
    status: leaseViewStatus(lease, now),
    service_account_id: lease.serviceAccountId,
    application_id: lease.applicationId,
    parent_lease_id: lease.parentLeaseId,
    audience: lease.audience,
    scopes: lease.scopes,
    grant_type: lease.grantType,
    client_kid: lease.clientKid,
    subject_issuer: lease.subjectIssuer,
    subject: lease.subject,
    issued_at: lease.issuedAt.toISOString(),
    expires_at: lease.expiresAt.toISOString(),
    max_expires_at: lease.maxExpiresAt.toISOString(),
    last_renewed_at: lease.lastRenewedAt?.toISOString() ?? null,
    renew_count: lease.renewCount,
    revoked_at: lease.revokedAt?.toISOString() ?? null,
    revoked_by: lease.revokedBy,
    revoke_reason: lease.revokeReason,
    source_address: lease.sourceAddress,
    secret_id: lease.secretId,
    secret_version: lease.secretVersion,
    grant_id: lease.grantId,
    adapter: lease.adapter,
    upstream_lease_id: lease.upstreamLeaseId,
    upstream_revoke: lease.upstreamRevokeState
      ? {
          state: lease.upstreamRevokeState as UpstreamRevokeView["state"],
          attempts: lease.upstreamRevokeAttempts,
          next_attempt_at: lease.upstreamRevokeNextAt?.toISOString() ?? null,
          last_error: lease.upstreamRevokeError,
        }
      : null,
  };
}
