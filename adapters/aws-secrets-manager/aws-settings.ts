import { z } from "zod";
import type { SecretKind } from "../contract.js";
import { type InvalidSetting, InvalidAdapterSettings } from "../errors.js";
import { parsePostgresSettings, type PostgresStaticSettings } from "../postgres/postgres-settings.js";
import { isDynamicRoleName } from "../postgres/role-credentials.js";
import { IDENTIFIER_PATTERN, MAX_IDENTIFIER_BYTES } from "../postgres/settings-schema.js";

/** Secret names: 1 to 512 characters of ASCII letters, digits and /_+=.@- (CreateSecret's Name constraint). */
const SECRET_NAME_PATTERN = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
/** `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>` */
const SECRET_ARN_PATTERN = /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/;
const REGION_PATTERN = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
/** A VersionId, 32 to 64 characters: AWS's own are UUIDs, and the broker's rotations use `secrets-broker-<rotation id>`, which contains `_`. */
const VERSION_ID_PATTERN = /^[A-Za-z0-9_-]{32,64}$/;
/** Staging labels: 1 to 256 characters. */
const STAGE_PATTERN = /^[A-Za-z0-9_.:/+=@-]{1,256}$/;

export const DEFAULT_STAGE = "AWSCURRENT";
export const RETRY_MODES = ["standard", "adaptive"] as const;
export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_ATTEMPTS = 3;
const MAX_TIMEOUT_MS = 60_000;
const MAX_ATTEMPTS = 10;

/**
 * Rotation strategies of a database secret, after AWS's Lambda rotation strategies.
 * `single_user` changes the password of one role. `alternating_users` changes the
 * password of whichever of two roles is not in AWSCURRENT, so the old login keeps working.
 */
export const ROTATION_STRATEGIES = ["single_user", "alternating_users"] as const;
export type RotationStrategy = (typeof ROTATION_STRATEGIES)[number];
/**
 * Suffix of the second role's default name, as AWS's alternating-users rotation names its
 * clone (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotation-strategy.html).
 */
const CLONE_SUFFIX = "_clone";

/** Settings of a secret kept in AWS Secrets Manager, after validation and with defaults filled in. */
export interface AwsSecretSettings {
  /** The secret's name or full ARN, as SecretId takes it. */
  secret_id: string;
  /** AWS region; when absent, the region of the ARN or else the SDK's (AWS_REGION, shared config). */
  region?: string;
  /** Endpoint URL that replaces the regional endpoint, as AWS_ENDPOINT_URL_SECRETS_MANAGER does. */
  endpoint?: string;
  /** The staging label that leased reads take; AWSCURRENT unless `version_id` pins a version. */
  version_stage?: string;
  version_id?: string;
  timeouts: { connect_ms: number; request_ms: number };
  retry: { mode: (typeof RETRY_MODES)[number]; max_attempts: number };
  /** For a database secret: the PostgreSQL server and login role whose password the value holds. */
  database?: PostgresStaticSettings;
  /** For a database secret: `single_user` unless set. */
  rotation_strategy?: RotationStrategy;
  /** With `alternating_users`: the second login role, `<database.role.name>_clone` unless set. */
  clone_username?: string;
}

function integerBetween(minimum: number, maximum: number, unit: string) {
  const reason = `must be an integer from ${minimum} to ${maximum} ${unit}`;
  return z.number({ error: reason }).int(reason).min(minimum, reason).max(maximum, reason);
}

const settingsSchema = z
  .strictObject(
    {
      secret_id: z
        .string({ error: (issue) => (issue.input === undefined ? "is required: the secret's name or ARN in AWS Secrets Manager" : "must be a string") })
        .refine(
          (value) => SECRET_NAME_PATTERN.test(value) || SECRET_ARN_PATTERN.test(value),
          "must be a secret name (1 to 512 of A-Z a-z 0-9 / _ + = . @ -) or a full secret ARN",
        ),
      region: z.string({ error: "must be a string" }).regex(REGION_PATTERN, "must be an AWS region such as eu-west-1").optional(),
      endpoint: z
        .url({ protocol: /^https?$/, error: "must be an http or https URL such as https://secretsmanager.eu-west-1.amazonaws.com" })
        .optional(),
      version_stage: z.string({ error: "must be a string" }).regex(STAGE_PATTERN, "must be a staging label such as AWSCURRENT").optional(),
      version_id: z.string({ error: "must be a string" }).regex(VERSION_ID_PATTERN, "must be a VersionId: 32 to 64 letters, digits, - or _").optional(),
      timeouts: z
        .strictObject(
          {
            connect_ms: integerBetween(100, MAX_TIMEOUT_MS, "milliseconds").default(DEFAULT_CONNECT_TIMEOUT_MS),
            request_ms: integerBetween(100, MAX_TIMEOUT_MS, "milliseconds").default(DEFAULT_REQUEST_TIMEOUT_MS),
          },
          { error: "must be an object with connect_ms and request_ms" },
        )
        .default({ connect_ms: DEFAULT_CONNECT_TIMEOUT_MS, request_ms: DEFAULT_REQUEST_TIMEOUT_MS }),
      retry: z
        .strictObject(
          {
            mode: z.enum(RETRY_MODES, { error: `must be one of ${RETRY_MODES.join(", ")}` }).default("standard"),
            max_attempts: integerBetween(1, MAX_ATTEMPTS, "attempts, the first one included").default(DEFAULT_MAX_ATTEMPTS),
          },
          { error: "must be an object with mode and max_attempts" },
        )
        .default({ mode: "standard", max_attempts: DEFAULT_MAX_ATTEMPTS }),
      database: z.unknown().optional(),
      rotation_strategy: z.enum(ROTATION_STRATEGIES, { error: `must be one of ${ROTATION_STRATEGIES.join(", ")}` }).optional(),
      clone_username: z
        .string({ error: "must be a string" })
        .regex(IDENTIFIER_PATTERN, "must be a role name: a letter or _, then up to 62 letters, digits, _ or $")
        .optional(),
    },
    {
      error:
        "must be an object with secret_id and optional region, endpoint, version_stage, version_id, timeouts, retry, database, rotation_strategy, clone_username",
    },
  )
  .superRefine((settings, context) => {
    if (settings.version_id !== undefined && settings.version_stage !== undefined) {
      context.addIssue({ code: "custom", path: ["version_id"], message: "give version_id or version_stage, not both" });
    }
    const arnRegion = SECRET_ARN_PATTERN.exec(settings.secret_id)?.[1];
    if (arnRegion !== undefined && settings.region !== undefined && settings.region !== arnRegion) {
      context.addIssue({ code: "custom", path: ["region"], message: `differs from the region ${arnRegion} of the ARN in secret_id; remove it or correct it` });
    }
    strategyIssues(settings).forEach((issue) => context.addIssue({ code: "custom", ...issue }));
  });

/** Returns the problems of the rotation strategy settings: they need a database secret and two different roles. */
function strategyIssues(settings: { database?: unknown; rotation_strategy?: RotationStrategy; clone_username?: string }): { path: string[]; message: string }[] {
  const alternating = settings.rotation_strategy === "alternating_users";
  if (settings.rotation_strategy !== undefined && settings.database === undefined) {
    return [{ path: ["rotation_strategy"], message: "applies to a database secret only; add database or remove rotation_strategy" }];
  }
  if (settings.clone_username !== undefined && !alternating) {
    return [{ path: ["clone_username"], message: "applies with rotation_strategy alternating_users only; set that strategy or remove clone_username" }];
  }
  if (settings.clone_username !== undefined && isDynamicRoleName(settings.clone_username)) {
    return [{ path: ["clone_username"], message: "names a role that the postgres adapter creates for a dynamic lease; name a role that no lease owns" }];
  }
  const roleName = roleNameOf(settings.database);
  if (!alternating || roleName === undefined) {
    return [];
  }
  if (settings.clone_username === roleName) {
    return [{ path: ["clone_username"], message: `is database.role.name ${roleName}; alternating users needs a second role, so name another one` }];
  }
  if (settings.clone_username === undefined && Buffer.byteLength(roleName + CLONE_SUFFIX) > MAX_IDENTIFIER_BYTES) {
    return [{ path: ["clone_username"], message: `is required because ${roleName}${CLONE_SUFFIX} is longer than ${MAX_IDENTIFIER_BYTES} bytes; name the second role` }];
  }
  return [];
}

function roleNameOf(database: unknown): string | undefined {
  const role = (database as { role?: { name?: unknown } } | undefined)?.role;
  return typeof role?.name === "string" ? role.name : undefined;
}

/**
 * Validates the settings of an AWS Secrets Manager secret. Throws `InvalidAdapterSettings`
 * with one entry per bad setting. `database` takes the settings of a static PostgreSQL
 * secret (connection and role), validated by the postgres adapter's rules.
 */
export function parseAwsSettings(kind: SecretKind, settings: unknown): AwsSecretSettings {
  if (kind !== "static") {
    throw new InvalidAdapterSettings([{ name: "kind", reason: "the aws-secrets-manager adapter serves static secrets only; AWS keeps one value per version" }]);
  }
  const result = settingsSchema.safeParse(settings);
  const rawDatabase = typeof settings === "object" && settings !== null ? (settings as Record<string, unknown>)["database"] : undefined;
  const databaseProblems = rawDatabase === undefined ? [] : databaseSettingProblems(rawDatabase);
  if (!result.success || databaseProblems.length > 0) {
    const problems = result.success ? [] : result.error.issues.flatMap(toInvalidSettings);
    throw new InvalidAdapterSettings([...problems, ...databaseProblems]);
  }

  const { database, version_stage, region, rotation_strategy, clone_username, ...rest } = result.data;
  const arnRegion = SECRET_ARN_PATTERN.exec(rest.secret_id)?.[1];
  const resolvedRegion = region ?? arnRegion;
  return {
    ...rest,
    ...(resolvedRegion === undefined ? {} : { region: resolvedRegion }),
    // A pinned version_id reads that version; only without one does the stage default to AWSCURRENT.
    ...(rest.version_id === undefined ? { version_stage: version_stage ?? DEFAULT_STAGE } : {}),
    ...(database === undefined ? {} : { database: parseDatabaseSettings(database) }),
    ...(rotation_strategy === "alternating_users" ? { rotation_strategy, clone_username: clone_username ?? `${roleNameOf(database)}${CLONE_SUFFIX}` } : {}),
  };
}

function parseDatabaseSettings(database: unknown): PostgresStaticSettings {
  return parsePostgresSettings("static", database);
}

/** Validates `database` as the settings of a static PostgreSQL secret; names each problem under `database.`. */
function databaseSettingProblems(database: unknown): InvalidSetting[] {
  try {
    parsePostgresSettings("static", database);
    return [];
  } catch (error) {
    if (error instanceof InvalidAdapterSettings) {
      return error.invalidSettings.map((entry) => ({ name: entry.name === "settings" ? "database" : `database.${entry.name}`, reason: entry.reason }));
    }
    throw error;
  }
}

function toInvalidSettings(issue: z.core.$ZodIssue): InvalidSetting[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({ name: [...issue.path, key].join("."), reason: "unknown setting; remove it" }));
  }
  return [{ name: issue.path.length === 0 ? "settings" : issue.path.join("."), reason: issue.message }];
}
