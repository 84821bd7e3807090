import path from "node:path";
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
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const environmentSchema = z.object({
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
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
});

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
  };
}
