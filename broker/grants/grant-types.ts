import type { grants } from "../db/schema.js";
import type { GrantStatus, GrantView } from "./grant-schemas.js";

export type GrantRow = typeof grants.$inferSelect;

/** Returns a grant's status at `now`: revoked wins, then its validity window decides. */
export function grantStatus(grant: GrantRow, now: Date): GrantStatus {
  if (grant.revokedAt) return "revoked";
  if (grant.notAfter && grant.notAfter <= now) return "expired";
  if (grant.notBefore && grant.notBefore > now) return "not_yet_valid";
  return "active";
}

export function toGrantView(grant: GrantRow, secretName: string | null, now: Date): GrantView {
  return {
    id: grant.id,
    service_account_id: grant.serviceAccountId,
    secret_id: grant.secretId,
    secret: secretName,
    audience: grant.audience,
    scopes: grant.scopes,
    max_ttl: grant.maxTtl,
    not_before: grant.notBefore?.toISOString() ?? null,
    not_after: grant.notAfter?.toISOString() ?? null,
    approved_by: grant.approvedBy,
    justification: grant.justification,
    status: grantStatus(grant, now),
    created_at: grant.createdAt.toISOString(),
    created_by: grant.createdBy,
    updated_at: grant.updatedAt.toISOString(),
    revoked_at: grant.revokedAt?.toISOString() ?? null,
    revoked_by: grant.revokedBy,
    revoke_reason: grant.revokeReason,
  };
}
