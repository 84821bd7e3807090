import { z } from "@hono/zod-openapi";
import { idSchema, Rfc3339 } from "../http/common-schemas.js";
import { LINEAGE_FORMATS } from "./lineage-format.js";

export const LineageQuery = z
  .strictObject({
    service_account_id: idSchema("sa", "service account").optional(),
    application_id: idSchema("app", "application").optional(),
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
    grant_id: z.string().nullable().openapi({ description: "The grant the lease was issued under. Always null until leases record grants." }),
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
