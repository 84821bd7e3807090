import { z } from "@hono/zod-openapi";
import { idSchema, Rfc3339 } from "../http/common-schemas.js";
import { LINEAGE_FORMATS } from "./lineage-format.js";

export const LineageQuery = z
  .strictObject({
    service_account_id: idSchema("sa", "service account").optional(),
    application_id: idSchema("app", "application").optional(),
    secret_id: idSchema("sec", "secret").optional(),
    from: Rfc3339.optional().openapi({ description: "Only leases still live at or after this time (not revoked or expired by then)." }),
    to: Rfc3339.optional().openapi({ description: "Only leases issued before this time." }),
    format: z
      .enum(LINEAGE_FORMATS, { error: `must be one of ${LINEAGE_FORMATS.join(", ")}` })
      .default("ndjson")
      .openapi({ description: "json (one array), ndjson (one object per line) or csv (header row, RFC 4180)." }),
  })
  .refine((query) => query.from === undefined || query.to === undefined || Date.parse(query.from) < Date.parse(query.to), {
    message: "must be later than from",
    path: ["to"],
  });

export const LineageRecordSchema = z
  .object({
    lease_id: z.string(),
    kind: z.string(),
    service_account_id: z.string(),
    service_account_name: z.string(),
    technical_owner: z.string().openapi({ description: "Technical owner of the service account." }),
    application_id: z.string(),
    application_name: z.string().nullable(),
    business_owner: z.string().nullable().openapi({ description: "Business owner of the application." }),
    grant_type: z.string(),
    grant_id: z.string().nullable().openapi({ description: "The grant the lease was issued under; null for an access token within the account's allowed audiences." }),
    secret_id: z.string().nullable(),
    secret_name: z.string().nullable(),
    secret_version: z.string().nullable().openapi({ description: "The secret version the credential carried." }),
    version_fingerprint: z.string().nullable().openapi({ description: "Keyed fingerprint (HMAC-SHA256) of that version's value." }),
    upstream_lease_id: z.string().nullable().openapi({ description: "The upstream's id of a dynamic credential, such as a PostgreSQL role name." }),
    upstream_revoke_state: z.string().nullable().openapi({ description: "pending, done or failed: the revocation of the upstream credential once the lease ended." }),
    audience: z.string().nullable(),
    scopes: z.array(z.string()).openapi({ description: "In CSV, joined with spaces." }),
    client_kid: z.string().nullable().openapi({ description: "Key id of the client assertion (client_credentials)." }),
    subject_issuer: z.string().nullable().openapi({ description: "Issuer of the federated subject token (token exchange)." }),
    subject: z.string().nullable().openapi({ description: "Subject of the federated subject token (token exchange)." }),
    issued_at: z.string(),
    last_renewed_at: z.string().nullable(),
    renew_count: z.number().int(),
    expires_at: z.string(),
    max_expires_at: z.string(),
    ended_at: z.string().nullable().openapi({ description: "revoked_at for a revoked lease, expires_at for an expired one, null while live." }),
    end_reason: z.enum(["revoked", "expired"]).nullable(),
    revoked_at: z.string().nullable(),
    revoked_by: z.string().nullable(),
    revoke_reason: z.string().nullable(),
    source_address: z.string().nullable(),
    parent_lease_id: z.string().nullable(),
  })
  .openapi("LineageRecord");
