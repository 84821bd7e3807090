import path from "node:path";
import { CronPattern } from "croner";
import { z } from "zod";

/** Default request body limit: 64 KiB, enough for any register object and far below abuse size. */
export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;

/** Broker settings read from the environment once at start-up. */
export interface BrokerConfig {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string | undefined;
  issuer: string;
  masterKey: string | undefined;
  logLevel: string;
  bodyLimitBytes: number;
  shutdownGraceMs: number;
  /** Algorithm of new signing keys. */
  signingAlgorithm: "ES256" | "EdDSA" | "RS256";
  /** Global cap on an access token's TTL, in seconds. */
  tokenTtlCap: number;
  /** Maximum life of an access-token lease across renewals, in seconds. */
  leaseMaxTtl: number;
  /** Tolerated clock difference when checking `iat`, `nbf` and `exp` of incoming JWTs, in seconds. */
  clockSkew: number;
  /** How long a new signing key is published before it signs, in seconds. */
  keyPublishDelay: number;
  /** Oldest subject token accepted for token exchange, by its `iat`, in seconds. */
  maxSubjectTokenAge: number;
  /** Cron expression of the lease expiry sweep (croner syntax, seconds field allowed). */
  sweepSchedule: string;
  /** Time an adapter call may take before the broker gives up on it, in milliseconds. */
  adapterTimeoutMs: number;
  /** Cron expression of the rotation scheduler's tick (croner syntax, seconds field allowed). */
  rotationSchedule: string;
  /** How long a process's claim on a rotation lasts without a heartbeat, in milliseconds. */
  rotationClaimTtlMs: number;
  /** The review check's action on an active account whose access review is overdue beyond the grace period. */
  reviewOverdueAction: ReviewOverdueAction;
  /** Days after the review due date before `reviewOverdueAction` applies. */
  reviewGraceDays: number;
  /** Cron expression of the overdue-review check (croner syntax, seconds field allowed). */
  reviewCheckSchedule: string;
  /** Longest `max_token_ttl` a privileged account may have before a finding is raised, in seconds. */
  privilegedTokenTtlCap: number;
  /** Days without any issuance after which an active account is reported as a candidate for offboarding. */
  unusedAccountDays: number;
}

export const REVIEW_OVERDUE_ACTIONS = ["warn", "suspend"] as const;
export type ReviewOverdueAction = (typeof REVIEW_OVERDUE_ACTIONS)[number];

/** Access-token TTL cap: 15 minutes by default, 12 hours at most. */
export const DEFAULT_TOKEN_TTL_CAP_SECONDS = 15 * 60;
export const MAX_TOKEN_TTL_CAP_SECONDS = 12 * 60 * 60;
/** Renewals may keep an access-token lease alive for one hour by default. */
export const DEFAULT_LEASE_MAX_TTL_SECONDS = 60 * 60;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const environmentSchema = z.object({
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: z.coerce
    .number({ message: "must be a port number from 1 to 65535" })
    .int({ message: "must be a port number from 1 to 65535" })
    .min(1, "must be a port number from 1 to 65535")
    .max(65535, "must be a port number from 1 to 65535")
    .default(8080),
  BROKER_DATA_DIR: z.string().min(1).default("./.broker-data"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL")
    .optional(),
  BROKER_ISSUER: z.url({ protocol: /^https?$/ }).optional(),
  BROKER_MASTER_KEY: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  BROKER_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(DEFAULT_BODY_LIMIT_BYTES),
  BROKER_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
  BROKER_SIGNING_ALG: z.enum(["ES256", "EdDSA", "RS256"]).default("ES256"),
  BROKER_TOKEN_TTL: z.coerce.number().int().min(60).max(MAX_TOKEN_TTL_CAP_SECONDS).default(DEFAULT_TOKEN_TTL_CAP_SECONDS),
  BROKER_LEASE_MAX_TTL: z.coerce.number().int().min(60).max(32 * 24 * 3600).default(DEFAULT_LEASE_MAX_TTL_SECONDS),
  BROKER_CLOCK_SKEW: z.coerce.number().int().min(0).max(300).default(30),
  BROKER_KEY_PUBLISH_DELAY: z.coerce.number().int().min(0).max(86_400).default(600),
  BROKER_MAX_SUBJECT_TOKEN_AGE: z.coerce.number().int().min(60).max(30 * 24 * 3600).default(24 * 3600),
  BROKER_ADAPTER_TIMEOUT: z.coerce.number().int().min(1).max(300).default(10),
  BROKER_ROTATION_SCHEDULE: z
    .string()
    .min(1)
    .default("*/10 * * * * *")
    .refine(isCronExpression, "must be a cron expression of five, six or seven fields, such as '*/10 * * * * *'"),
  BROKER_ROTATION_CLAIM_TTL: z.coerce.number().int().min(15).max(3600).default(60),
  BROKER_REVIEW_OVERDUE_ACTION: z.enum(REVIEW_OVERDUE_ACTIONS).default("warn"),
  BROKER_REVIEW_GRACE_DAYS: z.coerce.number().int().min(0).max(365).default(14),
  BROKER_REVIEW_CHECK_SCHEDULE: z
    .string()
    .min(1)
    .default("0 */10 * * * *")
    .refine(isCronExpression, "must be a cron expression of five, six or seven fields, such as '0 */10 * * * *'"),
  BROKER_PRIVILEGED_TOKEN_TTL_CAP: z.coerce.number().int().min(60).max(MAX_TOKEN_TTL_CAP_SECONDS).default(900),
  BROKER_UNUSED_ACCOUNT_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  BROKER_SWEEP_SCHEDULE: z
    .string()
    .min(1)
    .default("*/15 * * * * *")
    .refine(isCronExpression, "must be a cron expression of five, six or seven fields, such as '*/15 * * * * *'"),
});

/** Checks a cron expression with the parser of croner, which schedules the sweep. */
export function isCronExpression(value: string): boolean {
  try {
    new CronPattern(value);
    return true;
  } catch {
    return false;
  }
}

/** Raised when an environment variable has an invalid value; the message names the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Reads and validates the broker's environment variables. */
export function loadConfig(environment: NodeJS.ProcessEnv = process.env): BrokerConfig {
  const present = Object.fromEntries(
    Object.entries(environment).filter(([, value]) => value !== undefined && value !== ""),
  );
  const parsed = environmentSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`invalid environment variable ${String(issue.path[0])}: ${issue.message}`);
  }

  const values = parsed.data;
  const issuer = (values.BROKER_ISSUER ?? `http://${values.HOST}:${values.PORT}`).replace(/\/+$/, "");
  return {
    host: values.HOST,
    port: values.PORT,
    dataDir: path.resolve(values.BROKER_DATA_DIR),
    databaseUrl: values.DATABASE_URL,
    issuer,
    masterKey: values.BROKER_MASTER_KEY,
    logLevel: values.LOG_LEVEL,
    bodyLimitBytes: values.BROKER_BODY_LIMIT_BYTES,
    shutdownGraceMs: values.BROKER_SHUTDOWN_GRACE_MS,
    signingAlgorithm: values.BROKER_SIGNING_ALG,
    tokenTtlCap: values.BROKER_TOKEN_TTL,
    leaseMaxTtl: values.BROKER_LEASE_MAX_TTL,
    clockSkew: values.BROKER_CLOCK_SKEW,
    keyPublishDelay: values.BROKER_KEY_PUBLISH_DELAY,
    maxSubjectTokenAge: values.BROKER_MAX_SUBJECT_TOKEN_AGE,
    sweepSchedule: values.BROKER_SWEEP_SCHEDULE,
    adapterTimeoutMs: values.BROKER_ADAPTER_TIMEOUT * 1000,
    rotationSchedule: values.BROKER_ROTATION_SCHEDULE,
    rotationClaimTtlMs: values.BROKER_ROTATION_CLAIM_TTL * 1000,
    reviewOverdueAction: values.BROKER_REVIEW_OVERDUE_ACTION,
    reviewGraceDays: values.BROKER_REVIEW_GRACE_DAYS,
    reviewCheckSchedule: values.BROKER_REVIEW_CHECK_SCHEDULE,
    privilegedTokenTtlCap: values.BROKER_PRIVILEGED_TOKEN_TTL_CAP,
    unusedAccountDays: values.BROKER_UNUSED_ACCOUNT_DAYS,
  };
}
