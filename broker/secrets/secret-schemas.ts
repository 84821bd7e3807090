import { z } from "@hono/zod-openapi";
import { isCronExpression } from "../config/config.js";
import { idParams, Rfc3339 } from "../http/common-schemas.js";
import { Owner } from "../register/register-schemas.js";

export const SECRET_KINDS = ["static", "dynamic"] as const;
export const VERSION_STAGES = ["pending", "current", "previous", "deprecated"] as const;
export const CHARACTER_CLASSES = ["lower", "upper", "digits", "symbols"] as const;

/** Credential TTL bounds for a secret, in seconds: 1 minute to 32 days (Vault's default system max TTL). */
export const MIN_SECRET_TTL_SECONDS = 60;
export const MAX_SECRET_TTL_SECONDS = 32 * 24 * 3600;
export const DEFAULT_SECRET_TTL_SECONDS = 3600;
export const DEFAULT_SECRET_MAX_TTL_SECONDS = 24 * 3600;
/** Generated values: 16 to 256 characters, 32 by default. */
export const MIN_GENERATED_LENGTH = 16;
export const MAX_GENERATED_LENGTH = 256;
export const DEFAULT_GENERATED_LENGTH = 32;
/** Rotation: at least one hour between rotations by age, at most ten years. */
const MIN_ROTATION_AGE_SECONDS = 3600;
const MAX_ROTATION_AGE_SECONDS = 10 * 365 * 24 * 3600;

/** Path-like: segments of lowercase letters, digits, '.', '_' or '-', separated by '/'. */
export const SecretName = z
  .string()
  .max(256, "must be at most 256 characters")
  .regex(
    /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/,
    "must be a path such as db/orders-readonly: segments of lowercase letters, digits, '.', '_' or '-', separated by '/'",
  )
  .openapi({ example: "db/orders-readonly" });

const FieldName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, "must be a field name of letters, digits, '_', '.' or '-'");

export const GenerateSchema = z
  .strictObject({
    length: z.number().int().min(MIN_GENERATED_LENGTH).max(MAX_GENERATED_LENGTH).default(DEFAULT_GENERATED_LENGTH),
    classes: z
      .array(z.enum(CHARACTER_CLASSES))
      .min(1)
      .refine((values) => new Set(values).size === values.length, "must not contain duplicates")
      .default(["lower", "upper", "digits"]),
    field: FieldName.default("value"),
  })
  .openapi("GeneratePolicy");

/** A value given by an operator: one string, kept as field `value`, or an object of string fields. */
const ValueSchema = z.union(
  [
    z.string().min(1, "must not be empty").max(16 * 1024),
    z
      .record(FieldName, z.string().max(16 * 1024))
      .refine((value) => Object.keys(value).length > 0 && Object.keys(value).length <= 64, "must have 1 to 64 fields"),
  ],
  { message: 'must be a string of at most 16 KiB, or an object of 1 to 64 field names to strings, such as {"password": "..."}' },
);

export const RotationSchema = z
  .strictObject({
    schedule: z
      .string()
      .max(128)
      .refine(isCronExpression, "must be a cron expression such as '0 3 * * 1' (minute hour day month weekday)")
      .optional(),
    time_zone: z.string().refine(isTimeZone, "must be an IANA time zone such as Europe/Paris or UTC").optional(),
    max_age: z.number().int().min(MIN_ROTATION_AGE_SECONDS).max(MAX_ROTATION_AGE_SECONDS).optional(),
    window: z.number().int().min(60).max(7 * 24 * 3600).optional(),
    old_leases: z.enum(["grace", "revoke"]).default("grace"),
  })
  .refine((value) => value.schedule !== undefined || value.max_age !== undefined, "must set schedule, max_age or both")
  .openapi("RotationPolicy");

const ttlFields = {
  default_ttl: z.number().int().min(MIN_SECRET_TTL_SECONDS).max(MAX_SECRET_TTL_SECONDS),
  max_ttl: z.number().int().min(MIN_SECRET_TTL_SECONDS).max(MAX_SECRET_TTL_SECONDS),
};

export const SecretCreate = z
  .strictObject({
    name: SecretName,
    adapter: z.string().min(1).max(64),
    kind: z.enum(SECRET_KINDS).default("static"),
    owner: Owner,
    description: z.string().max(1000).optional(),
    settings: z.record(z.string(), z.unknown()).default({}),
    generate: GenerateSchema.optional(),
    value: ValueSchema.optional(),
    rotation: RotationSchema.optional(),
    default_ttl: ttlFields.default_ttl
      .optional()
      .openapi({ description: `Lease TTL when a workload asks for none; ${DEFAULT_SECRET_TTL_SECONDS} s by default, or max_ttl when that is lower.` }),
    max_ttl: ttlFields.max_ttl.default(DEFAULT_SECRET_MAX_TTL_SECONDS),
  })
  .openapi("SecretCreate");

export const SecretUpdate = z
  .strictObject({
    owner: Owner.optional(),
    description: z.string().max(1000).nullable().optional(),
    settings: z.record(z.string(), z.unknown()).optional(),
    generate: GenerateSchema.nullable().optional(),
    rotation: RotationSchema.nullable().optional(),
    default_ttl: ttlFields.default_ttl.optional(),
    max_ttl: ttlFields.max_ttl.optional(),
  })
  .refine((value) => Object.keys(value).length > 0, "must change at least one field")
  .openapi("SecretUpdate");

export const Secret = z
  .object({
    id: z.string(),
    name: z.string(),
    adapter: z.string(),
    kind: z.enum(SECRET_KINDS),
    owner: z.string(),
    description: z.string().nullable(),
    settings: z.record(z.string(), z.unknown()),
    generate: z.object({ length: z.number(), classes: z.array(z.string()), field: z.string() }).nullable(),
    rotation: z.record(z.string(), z.unknown()).nullable(),
    default_ttl: z.number().int(),
    max_ttl: z.number().int(),
    current_version: z.string().nullable(),
    next_rotation_at: z.string().nullable().openapi({ description: "When the rotation scheduler next starts a rotation; null without a policy or while one runs." }),
    last_rotated_at: z.string().nullable(),
    external_rotation: z
      .object({ rotator: z.string(), schedule: z.string().nullable(), window: z.string().nullable(), checked_at: z.string() })
      .nullable()
      .openapi({ description: "Set when the upstream rotates the secret itself (an AWS rotation Lambda); the broker then never rotates it." }),
    created_at: z.string(),
    created_by: z.string(),
    updated_at: z.string(),
    deleted_at: z.string().nullable(),
  })
  .openapi("Secret");

export const SecretVersion = z
  .object({
    version: z.string(),
    stage: z.enum(VERSION_STAGES),
    fingerprint: z.string().nullable().openapi({ description: "HMAC-SHA256 of the value under the broker's fingerprint key, as hmac-sha256:<hex>." }),
    rotation_id: z.string().nullable(),
    created_at: z.string(),
    created_by: z.string(),
    promoted_at: z.string().nullable(),
    retired_at: z.string().nullable(),
  })
  .openapi("SecretVersion");

export const SecretFilter = z.strictObject({
  adapter: z.string().min(1).max(64).optional(),
  kind: z.enum(SECRET_KINDS).optional(),
  owner: z.string().min(1).max(256).optional(),
  name_prefix: z.string().min(1).max(256).optional(),
  rotation_due_before: Rfc3339.optional().openapi({ description: "Only secrets whose next rotation is due before this time." }),
  include_deleted: z
    .enum(["true", "false"], { message: "must be true or false" })
    .transform((value) => value === "true")
    .optional(),
});

export const FingerprintRequest = z.strictObject({ value: ValueSchema }).openapi("FingerprintRequest");
export const FingerprintMatch = z
  .object({
    fingerprint: z.string(),
    matches: z.array(z.object({ secret_id: z.string(), name: z.string(), version: z.string(), stage: z.enum(VERSION_STAGES) })),
  })
  .openapi("FingerprintMatch");

export const SecretIdParams = idParams("sec", "secret");

export type SecretCreateInput = z.infer<typeof SecretCreate>;
export type SecretUpdateInput = z.infer<typeof SecretUpdate>;
export type SecretFilterInput = z.infer<typeof SecretFilter>;
export type SecretView = z.infer<typeof Secret>;
export type SecretVersionView = z.infer<typeof SecretVersion>;
export type ValueInput = z.infer<typeof ValueSchema>;

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

