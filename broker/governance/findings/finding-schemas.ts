import { z } from "@hono/zod-openapi";
import { booleanQuery } from "../../register/register-schemas.js";
import { RULE_IDS } from "./rule-ids.js";

const SEVERITIES = ["low", "medium", "high", "critical"] as const;

export const FindingSchema = z
  .object({
    id: z.string().openapi({ description: "fnd_<rule>_<record id>, stable while the violation lasts." }),
    rule: z.enum(RULE_IDS),
    severity: z.enum(SEVERITIES),
    subject: z.object({ type: z.enum(["service_account", "secret"]), id: z.string() }).openapi({ description: "The record an exception must cover to suppress this finding." }),
    records: z.array(z.object({ type: z.string(), id: z.string() })),
    message: z.string(),
    controls: z.array(z.object({ framework: z.string(), id: z.string() })),
    suppressed: z.boolean(),
    exception_id: z.string().nullable(),
  })
  .openapi("Finding");

export const FindingReport = z
  .object({
    generated_at: z.string(),
    open: z.number().int().openapi({ description: "Number of findings no live exception suppresses." }),
    suppressed: z.number().int().openapi({ description: "Number of findings a live exception suppresses, listed only with include_suppressed=true." }),
    items: z.array(FindingSchema),
  })
  .openapi("FindingReport");

export const FindingFilter = z.strictObject({
  rule: z.enum(RULE_IDS).optional(),
  severity: z.enum(SEVERITIES).optional(),
  include_suppressed: booleanQuery.optional().openapi({ description: "Also list findings that a live exception suppresses (false by default)." }),
});
