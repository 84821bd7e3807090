import { z } from "@hono/zod-openapi";
import { idSchema, Rfc3339 } from "../http/common-schemas.js";

export const LEASE_STATUSES = ["active", "expired", "revoked", "revoke_failed"] as const;

export const Lease = z
  .object({
    id: z.string(),
    kind: z.string(),
    status: z.enum(LEASE_STATUSES),
    service_account_id: z.string(),
    application_id: z.string(),
    parent_lease_id: z.string().nullable(),
    audience: z.string().nullable(),
    scopes: z.array(z.string()),
    grant_type: z.string(),
    client_kid: z.string().nullable(),
    subject_issuer: z.string().nullable(),
    subject: z.string().nullable(),
    issued_at: z.string(),
    expires_at: z.string(),
    max_expires_at: z.string(),
    last_renewed_at: z.string().nullable(),
    renew_count: z.number().int(),
    revoked_at: z.string().nullable(),
    revoked_by: z.string().nullable(),
    revoke_reason: z.string().nullable(),
    source_address: z.string().nullable(),
    secret_id: z.string().nullable(),
    secret_version: z.string().nullable(),
    grant_id: z.string().nullable(),
    adapter: z.string().nullable(),
    upstream_lease_id: z.string().nullable().openapi({ description: "The upstream's id of a dynamic credential, such as a PostgreSQL role name." }),
    upstream_revoke: z
      .object({
        state: z.enum(["pending", "done", "failed"]),
        attempts: z.number().int(),
        next_attempt_at: z.string().nullable(),
        last_error: z.string().nullable(),
      })
      .nullable(),
  })
  .openapi("Lease");

export const LeaseFilterQuery = z.strictObject({
  service_account_id: idSchema("sa", "service account").optional(),
  application_id: idSchema("app", "application").optional(),
  secret_id: idSchema("sec", "secret").optional(),
  grant_id: idSchema("grt", "grant").optional(),
  status: z.enum(LEASE_STATUSES).optional(),
  issued_after: Rfc3339.optional(),
  issued_before: Rfc3339.optional(),
});

/** Lease ids are `lease_` and 24 hex characters. */
export const LeaseIdParams = z.object({
  id: idSchema("lease", "lease").openapi({ param: { name: "id", in: "path" } }),
});

export const RenewRequest = z
  .strictObject({
    increment: z
      .number()
      .int()
      .min(1)
      .max(32 * 24 * 3600)
      .optional()
      .openapi({ description: "Seconds from now; advisory, capped by the max TTL. Defaults to the account's max token TTL for an access token, the secret's default TTL for a credential." }),
  })
  .openapi("LeaseRenewRequest");

export const RenewResponse = z
  .object({
    lease_id: z.string(),
    lease_duration: z.number().int(),
    renewable: z.boolean(),
    expires_at: z.string(),
    warnings: z.array(z.string()),
    access_token: z.string().optional().openapi({ description: "A new access token for an access-token lease." }),
    version: z.string().nullable().optional().openapi({ description: "Credential leases: the secret version the lease carries." }),
    current_version: z
      .string()
      .nullable()
      .optional()
      .openapi({ description: "Credential leases: the secret's current version; when it differs from version, the secret was rotated and a new credential carries the new value." }),
  })
  .openapi("LeaseRenewResponse");

export const RevokeRequest = z.strictObject({ reason: z.string().min(1).max(1000).optional() }).openapi("LeaseRevokeRequest");

export const BulkRevokeRequest = z
  .strictObject({
    service_account_id: idSchema("sa", "service account").optional(),
    application_id: idSchema("app", "application").optional(),
    secret_id: idSchema("sec", "secret").optional(),
    secret_version: z.string().min(1).max(128).optional().openapi({ description: "With secret_id: only leases that carried this version." }),
    prefix: z
      .string()
      .regex(/^lease_[0-9a-f]{0,24}$/, "must be the start of a lease id: 'lease_' followed by hex characters")
      .optional(),
    reason: z.string().min(1).max(1000).optional(),
  })
  .refine(
    (value) => [value.service_account_id, value.application_id, value.secret_id, value.prefix].filter((item) => item !== undefined).length === 1,
    { message: "give exactly one of service_account_id, application_id, secret_id or prefix", path: ["service_account_id"] },
  )
  .refine((value) => value.secret_version === undefined || value.secret_id !== undefined, {
    message: "secret_version needs secret_id",
    path: ["secret_version"],
  })
  .openapi("LeaseBulkRevokeRequest");

export const BulkRevokeResponse = z
  .object({
    revoked: z.number().int(),
    lease_ids: z.array(z.string()),
    upstream: z
      .object({ revoked: z.number().int(), failed: z.number().int(), pending: z.number().int() })
      .openapi({ description: "Upstream credentials of the revoked leases: revoked now, failed (retried with backoff), or left to the retry job." }),
  })
  .openapi("LeaseBulkRevokeResponse");
