import { pino, type Logger } from "pino";

export type { Logger };

/**
 * Paths removed from every log line. Any field that can hold a bearer token, key or
 * secret value is listed, at the top level and one level down, so that a caller who
 * logs a whole object by mistake still leaks nothing.
 */
export const REDACTED_PATHS = [
  "authorization",
  "headers.authorization",
  "req.headers.authorization",
  "token",
  "*.token",
  "admin_token",
  "*.admin_token",
  "adminToken",
  "*.adminToken",
  "password",
  "*.password",
  "secret",
  "*.secret",
  "client_assertion",
  "*.client_assertion",
  "subject_token",
  "*.subject_token",
  "access_token",
  "*.access_token",
  "jwk.d",
  "*.jwk.d",
  "private_key",
  "*.private_key",
  "masterKey",
  "*.masterKey",
  "value",
  "*.value",
];

export interface LoggerOptions {
  level: string;
  /** Where lines go; standard output by default. Tests pass a stream to inspect the output. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: "secrets-broker" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/**
 * Describes an error for a log line without the bound parameters of a failed query,
 * which drizzle puts into its error message and which may hold secret values.
 */
export function loggableError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) {
    return { message: String(error) };
  }
  const cause = error.cause as { code?: string; message?: string } | undefined;
  const isQueryError = error.name === "DrizzleQueryError" || "query" in error;
  return {
    type: error.name,
    message: isQueryError ? "database query failed" : error.message,
    query: isQueryError ? (error as { query?: string }).query : undefined,
    sqlState: cause?.code,
    cause: cause?.message,
    stack: isQueryError ? undefined : error.stack,
  };
}
