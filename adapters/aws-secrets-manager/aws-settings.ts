import { z } from "zod";
import type { SecretKind } from "../contract.js";
import { type InvalidSetting, InvalidAdapterSettings } from "../errors.js";
import { parsePostgresSettings, type PostgresStaticSettings } from "../postgres/postgres-settings.js";

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
    },
    { error: "must be an object with secret_id and optional region, endpoint, version_stage, version_id, timeouts, retry, database" },
  )
  .superRefine((settings, context) => {
    if (settings.version_id !== undefined && settings.version_stage !== undefined) {
      context.addIssue({ code: "custom", path: ["version_id"], message: "give version_id or version_stage, not both" });
    }
    const arnRegion = SECRET_ARN_PATTERN.exec(settings.secret_id)?.[1];
    if (arnRegion !== undefined && settings.region !== undefined && settings.region !== arnRegion) {
      context.addIssue({ code: "custom", path: ["region"], message: `differs from the region ${arnRegion} of the ARN in secret_id; remove it or correct it` });
    }
  });

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

  const { database, version_stage, region, ...rest } = result.data;
  const arnRegion = SECRET_ARN_PATTERN.exec(rest.secret_id)?.[1];
  const resolvedRegion = region ?? arnRegion;
  return {
    ...rest,
    ...(resolvedRegion === undefined ? {} : { region: resolvedRegion }),
    // A pinned version_id reads that version; only without one does the stage default to AWSCURRENT.
    ...(rest.version_id === undefined ? { version_stage: version_stage ?? DEFAULT_STAGE } : {}),
    ...(database === undefined ? {} : { database: parseDatabaseSettings(database) }),
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
