import { z } from "@hono/zod-openapi";
import { idSchema, Rfc3339 } from "../http/common-schemas.js";

export const CRITICALITIES = ["low", "medium", "high", "critical"] as const;
export const ACCOUNT_KINDS = ["workload", "ci", "automation", "supplier"] as const;
export const ACCOUNT_STATUSES = ["active", "suspended", "decommissioned"] as const;

/** Defaults for optional service-account fields. */
export const DEFAULT_REVIEW_INTERVAL_DAYS = 90;
export const MAX_REVIEW_INTERVAL_DAYS = 730;
/** Access-token TTL bounds in seconds: 1 minute to 12 hours, 15 minutes by default. */
export const MIN_TOKEN_TTL_SECONDS = 60;
export const MAX_TOKEN_TTL_SECONDS = 12 * 60 * 60;
export const DEFAULT_TOKEN_TTL_SECONDS = 15 * 60;

const Name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,127}$/, "must be 1-128 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit");
export const Owner = z.string().trim().min(1, "must not be empty").max(256);

/** RFC 6749 section 3.3 scope-token: printable ASCII except space, '"' and '\'. */
export const ScopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/, "must be an RFC 6749 scope token: printable ASCII with no space, '\"' or '\\'");
export const Audience = z.string().min(1).max(512);

export function uniqueList<T extends z.ZodType>(item: T, max: number) {
  return z
    .array(item)
    .max(max)
    .refine((values) => new Set(values as unknown[]).size === values.length, "must not contain duplicates");
}

export const ApplicationCreate = z
  .strictObject({
    name: Name,
    technical_owner: Owner,
    business_owner: Owner.optional(),
    criticality: z.enum(CRITICALITIES).default("medium"),
    regulated: z.boolean().default(false),
  })
  .openapi("ApplicationCreate");

export const ApplicationUpdate = z
  .strictObject({
    technical_owner: Owner.optional(),
    business_owner: Owner.nullable().optional(),
    criticality: z.enum(CRITICALITIES).optional(),
    regulated: z.boolean().optional(),
  })
  .refine((value) => Object.keys(value).length > 0, "must change at least one field")
  .openapi("ApplicationUpdate");

export const Application = z
  .object({
    id: z.string(),
    name: z.string(),
    technical_owner: z.string(),
    business_owner: z.string().nullable(),
    criticality: z.enum(CRITICALITIES),
    regulated: z.boolean(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Application");

export const SupplierBlockSchema = z
  .strictObject({
    name: Owner,
    contract_ref: z.string().trim().min(1).max(256),
    approved_by: Owner,
    approved_at: Rfc3339,
    contract_ends_at: Rfc3339.optional().openapi({ description: "End of the supplier contract; grants should not outlast it." }),
  })
  .openapi("SupplierBlock");

const accountFields = {
  name: Name,
  application_id: idSchema("app", "application"),
  technical_owner: Owner,
  expires_at: Rfc3339,
  kind: z.enum(ACCOUNT_KINDS).default("workload"),
  privileged: z.boolean().default(false),
  review_interval_days: z.number().int().min(1).max(MAX_REVIEW_INTERVAL_DAYS).default(DEFAULT_REVIEW_INTERVAL_DAYS),
  last_reviewed_at: Rfc3339.optional(),
  max_token_ttl: z.number().int().min(MIN_TOKEN_TTL_SECONDS).max(MAX_TOKEN_TTL_SECONDS).default(DEFAULT_TOKEN_TTL_SECONDS),
  allowed_audiences: uniqueList(Audience, 64).default([]),
  allowed_scopes: uniqueList(ScopeToken, 128).default([]),
  supplier: SupplierBlockSchema.optional(),
};

export const ServiceAccountCreate = z.strictObject(accountFields).openapi("ServiceAccountCreate");

export const ServiceAccountUpdate = z
  .strictObject({
    technical_owner: accountFields.technical_owner.optional(),
    expires_at: accountFields.expires_at.optional(),
    kind: z.enum(ACCOUNT_KINDS).optional(),
    privileged: z.boolean().optional(),
    review_interval_days: z.number().int().min(1).max(MAX_REVIEW_INTERVAL_DAYS).optional(),
    max_token_ttl: z.number().int().min(MIN_TOKEN_TTL_SECONDS).max(MAX_TOKEN_TTL_SECONDS).optional(),
    allowed_audiences: uniqueList(Audience, 64).optional(),
    allowed_scopes: uniqueList(ScopeToken, 128).optional(),
    supplier: SupplierBlockSchema.nullable().optional(),
  })
  .refine((value) => Object.keys(value).length > 0, "must change at least one field")
  .openapi("ServiceAccountUpdate");

export const ServiceAccount = z
  .object({
    id: z.string().openapi({ description: "Also the account's OAuth client_id." }),
    name: z.string(),
    application_id: z.string(),
    technical_owner: z.string(),
    kind: z.enum(ACCOUNT_KINDS),
    privileged: z.boolean(),
    status: z.enum(ACCOUNT_STATUSES),
    status_reason: z.string().nullable(),
    expires_at: z.string(),
    review_interval_days: z.number().int(),
    last_reviewed_at: z.string().nullable(),
    next_review_at: z.string(),
    review_overdue: z.boolean(),
    max_token_ttl: z.number().int(),
    allowed_audiences: z.array(z.string()),
    allowed_scopes: z.array(z.string()),
    supplier: SupplierBlockSchema.nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("ServiceAccount");

export const booleanQuery = z
  .enum(["true", "false"], { message: "must be true or false" })
  .transform((value) => value === "true");

export const ServiceAccountFilter = z.strictObject({
  application_id: idSchema("app", "application").optional(),
  owner: z.string().min(1).max(256).optional(),
  kind: z.enum(ACCOUNT_KINDS).optional(),
  status: z.enum(ACCOUNT_STATUSES).optional(),
  expiring_before: Rfc3339.optional(),
  review_overdue: booleanQuery.optional(),
});

export type ApplicationCreateInput = z.infer<typeof ApplicationCreate>;
export type ApplicationUpdateInput = z.infer<typeof ApplicationUpdate>;
export type ServiceAccountCreateInput = z.infer<typeof ServiceAccountCreate>;
export type ServiceAccountUpdateInput = z.infer<typeof ServiceAccountUpdate>;
export type ServiceAccountFilterInput = z.infer<typeof ServiceAccountFilter>;
export type ApplicationView = z.infer<typeof Application>;
export type ServiceAccountView = z.infer<typeof ServiceAccount>;
