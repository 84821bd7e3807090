import type { leases } from "../db/schema.js";

export type LeaseRow = typeof leases.$inferSelect;
export type LeaseStatus = "active" | "expired" | "revoked";

/** A lease's status at `now`: revoked wins over expired, and expiry needs no sweep to count. */
export function leaseStatus(lease: LeaseRow, now: Date): LeaseStatus {
  if (lease.revokedAt) return "revoked";
  if (lease.expiredAt || lease.expiresAt <= now) return "expired";
  return "active";
}

/** A lease as the API shows it. */
export interface LeaseView {
  id: string;
  kind: string;
  status: LeaseStatus;
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
}

export function toLeaseView(lease: LeaseRow, now: Date): LeaseView {
  return {
    id: lease.id,
    kind: lease.kind,
    status: leaseStatus(lease, now),
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
  };
}
