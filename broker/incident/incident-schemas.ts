import { z } from "@hono/zod-openapi";
import { idSchema, Rfc3339 } from "../http/common-schemas.js";
import { LineageRecordSchema } from "../lineage/lineage-schemas.js";

export const FINGERPRINT_PATTERN = /^hmac-sha256:[0-9a-f]{64}$/;

export const IncidentQuerySchema = z
  .strictObject({
    fingerprint: z
      .string()
      .regex(FINGERPRINT_PATTERN, "must be a fingerprint as POST /v1/fingerprints returns it: hmac-sha256: and 64 hex characters")
      .optional()
      .openapi({ description: "Keyed fingerprint of the leaked value, from POST /v1/fingerprints." }),
    service_account_id: idSchema("sa", "service account").optional(),
    from: Rfc3339.optional().openapi({ description: "Start of the window: leases not yet ended at this time. Required with service_account_id alone." }),
    to: Rfc3339.optional().openapi({ description: "End of the window: leases issued before this time. Now by default." }),
  })
  .refine((query) => query.fingerprint !== undefined || query.service_account_id !== undefined, {
    message: "give fingerprint, service_account_id, or both",
    path: ["fingerprint"],
  })
  .refine((query) => query.fingerprint !== undefined || query.from !== undefined, {
    message: "is required for a service-account report: the start of the incident window",
    path: ["from"],
  })
  .refine((query) => query.from === undefined || query.to === undefined || Date.parse(query.from) < Date.parse(query.to), {
    message: "must be later than from",
    path: ["to"],
  });

const Affected = z.object({
  service_accounts: z.array(z.object({ id: z.string(), name: z.string(), technical_owner: z.string() })),
  applications: z.array(z.object({ id: z.string(), name: z.string().nullable(), business_owner: z.string().nullable() })),
  secrets: z.array(z.object({ id: z.string(), name: z.string().nullable(), versions: z.array(z.string()) })),
});

export const IncidentReportSchema = z
  .object({
    generated_at: z.string(),
    query: z.object({ fingerprint: z.string().nullable(), service_account_id: z.string().nullable(), from: z.string().nullable(), to: z.string() }),
    matched_versions: z.array(z.object({ secret_id: z.string(), secret_name: z.string(), version: z.string(), stage: z.string(), created_at: z.string() })),
    credentials: z.array(LineageRecordSchema),
    truncated: z.boolean(),
    affected: Affected,
    indicators: z.object({ fingerprints: z.array(z.string()), source_addresses: z.array(z.string()), subjects: z.array(z.string()) }),
    actions_since: z.array(
      z.object({ at: z.string(), action: z.enum(["rotation.start", "lease.revoke"]), target: z.string(), actor: z.string().nullable(), detail: z.string() }),
    ),
    nis2_article_23: z.object({
      affected_systems: z.array(z.string()),
      exposure_window: z.object({ first_issued_at: z.string().nullable(), last_live_at: z.string().nullable() }),
      credentials_live_now: z.number().int(),
      indicators_of_compromise: z.array(z.string()),
      mitigations_taken: z.array(z.string()),
      to_be_completed_by_the_operator: z.array(z.string()),
    }),
    secrets_to_rotate: z.array(z.object({ id: z.string(), name: z.string().nullable() })),
    next_steps: z.array(z.string()),
  })
  .openapi("IncidentReport");
