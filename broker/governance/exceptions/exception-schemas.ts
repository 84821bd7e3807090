import { z } from "@hono/zod-openapi";
import { idParams, idSchema, Rfc3339 } from "../../http/common-schemas.js";
import { Owner } from "../../register/register-schemas.js";
import { RULE_IDS } from "../findings/rule-ids.js";

/** Maximum time from now to an exception's expiry, in days: one year, so that every accepted risk is reviewed again. */
export const MAX_EXCEPTION_DAYS = 365;

export const EXCEPTION_STATUSES = ["live", "expired", "revoked"] as const;
export type ExceptionStatus = (typeof EXCEPTION_STATUSES)[number];

const Text = z.string().trim().min(1, "must not be empty").max(2000);

export const ExceptionCreate = z
  .strictObject({
    control: z.enum(RULE_IDS).openapi({ description: "Id of the finding rule whose requirement is not met." }),
    service_account_id: idSchema("sa", "service account").optional().openapi({ description: "The account covered. Give this or secret_id." }),
    secret_id: idSchema("sec", "secret").optional().openapi({ description: "The secret covered. Give this or service_account_id." }),
    reason: Text.openapi({ description: "Why the control is not met." }),
    compensating_controls: Text.openapi({ description: "What reduces the risk meanwhile." }),
    accepted_by: Owner.openapi({ description: "Who accepted the residual risk." }),
    accepted_at: Rfc3339.optional().openapi({ description: "When the risk was accepted. Defaults to now and must not be in the future." }),
    expires_at: Rfc3339.openapi({ description: `End of the exception: in the future, at most ${MAX_EXCEPTION_DAYS} days ahead.` }),
  })
  .refine((value) => (value.service_account_id === undefined) !== (value.secret_id === undefined), {
    message: "give exactly one of service_account_id or secret_id",
    path: ["service_account_id"],
  })
  .openapi("PolicyExceptionCreate");

export const PolicyException = z
  .object({
    id: z.string(),
    control: z.string(),
    service_account_id: z.string().nullable(),
    secret_id: z.string().nullable(),
    reason: z.string(),
    compensating_controls: z.string(),
    accepted_by: z.string(),
    accepted_at: z.string(),
    expires_at: z.string(),
    status: z.enum(EXCEPTION_STATUSES),
    created_at: z.string(),
    created_by: z.string(),
    revoked_at: z.string().nullable(),
    revoked_by: z.string().nullable(),
    revoke_reason: z.string().nullable(),
  })
  .openapi("PolicyException");

export const ExceptionFilter = z.strictObject({
  status: z.enum(EXCEPTION_STATUSES).optional(),
  control: z.enum(RULE_IDS).optional(),
  service_account_id: idSchema("sa", "service account").optional(),
  secret_id: idSchema("sec", "secret").optional(),
});

export const ExceptionIdParams = idParams("exc", "exception");

export type ExceptionCreateInput = z.infer<typeof ExceptionCreate>;
export type ExceptionFilterInput = z.infer<typeof ExceptionFilter>;
export type PolicyExceptionView = z.infer<typeof PolicyException>;
