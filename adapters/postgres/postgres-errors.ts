import postgres from "postgres";
import { AdapterError, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable } from "../errors.js";
import { CallAborted } from "./abortable.js";
import { GroupRoleGrantFailed, RoleSessionsRemain } from "./role-statements.js";

/** Identifiers that error messages include: the secret, the server and the admin role, never a value. */
export interface ErrorContext {
  secretName: string;
  /** `host:port/database`. */
  server: string;
  adminRole: string;
  passwordSecret: string;
}

/**
 * Node socket and DNS errors, and postgres.js connection errors, that mean the server
 * could not be reached. NOTE: a server without TLS ends the connection when ssl is
 * require or verify-full, which postgres.js 3.4 reports as ECONNRESET, so that
 * configuration error is reported as unavailable too.
 */
const NETWORK_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);
/** SQLSTATEs of a server that is up but cannot serve now: 57P01-57P03 shutdown or start-up, 53xxx out of resources. */
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "53000", "53100", "53200", "53300", "53400"]);
const CONNECTION_EXCEPTION_CLASS = "08";
/** SQLSTATEs of a failed login: 28P01 wrong password, 28000 role may not log in or no pg_hba.conf entry. */
const LOGIN_FAILED_SQLSTATES = new Set(["28P01", "28000"]);
const INSUFFICIENT_PRIVILEGE = "42501";
const UNDEFINED_OBJECT = "42704";
const INVALID_DATABASE = "3D000";
/** SQLSTATE dependent_objects_still_exist: DROP ROLE found objects or privileges of the role. */
const DEPENDENT_OBJECTS = "2BP01";
/** Statement or lock timeouts set on the server: 57014 query_canceled, 55P03 lock_not_available. */
const SERVER_TIMEOUT_SQLSTATES = new Set(["57014", "55P03"]);
/** Login failures that postgres.js raises itself during SCRAM or for an unsupported method. */
const CLIENT_AUTH_ERROR_CODES = new Set(["SASL_SIGNATURE_MISMATCH", "AUTH_TYPE_NOT_IMPLEMENTED"]);

/**
 * Maps what postgres.js, Node or this adapter threw to an `AdapterError`. Messages are
 * built only from the context, SQLSTATEs, error codes and validated role names: a
 * server message or statement text never reaches them, because a failed CREATE ROLE
 * carries its statement. The original error stays as `cause`. Errors of unknown
 * origin are returned unchanged.
 */
export function toAdapterError(error: unknown, context: ErrorContext, action: string): unknown {
  if (error instanceof AdapterError) {
    return error;
  }
  const on = `on ${context.server} for secret ${context.secretName}`;

  if (error instanceof CallAborted) {
    return new UpstreamTimeout(`the call to ${action} ${on} timed out; retry later`, { cause: error });
  }
  if (error instanceof GroupRoleGrantFailed) {
    return groupRoleError(error, context, on);
  }
  if (error instanceof RoleSessionsRemain) {
    return new UpstreamUnavailable(
      `${error.sessions} session(s) of the role did not exit ${on}; the role can no longer log in, retry the revoke`,
      { cause: error },
    );
  }
  if (error instanceof postgres.PostgresError) {
    return serverError(error, context, action, on);
  }
  return clientError(error, context, on);
}

/**
 * Returns how a failed login reports itself, `SQLSTATE 28P01` or a postgres.js code such
 * as `SASL_SIGNATURE_MISMATCH`, or undefined when `error` is not a failed login.
 */
export function loginFailureCode(error: unknown): string | undefined {
  if (error instanceof postgres.PostgresError) {
    return LOGIN_FAILED_SQLSTATES.has(error.code) ? `SQLSTATE ${error.code}` : undefined;
  }
  const code = errorCode(error);
  return code !== undefined && CLIENT_AUTH_ERROR_CODES.has(code) ? code : undefined;
}

function groupRoleError(error: GroupRoleGrantFailed, context: ErrorContext, on: string): AdapterError {
  const group = error.groupRole;
  if (error.cause.code === UNDEFINED_OBJECT) {
    return new UpstreamRejected(`group role ${group} does not exist ${on}; create it or remove it from role.member_of`, { cause: error });
  }
  if (error.cause.code === INSUFFICIENT_PRIVILEGE) {
    return new UpstreamRejected(
      `admin role ${context.adminRole} may not grant group role ${group} ${on}; grant it ${group} WITH ADMIN OPTION`,
      { cause: error },
    );
  }
  return new UpstreamRejected(`PostgreSQL rejected the grant of group role ${group} ${on} (SQLSTATE ${error.cause.code})`, { cause: error });
}

function serverError(error: postgres.PostgresError, context: ErrorContext, action: string, on: string): AdapterError {
  const code = error.code;
  if (UNAVAILABLE_SQLSTATES.has(code) || code.startsWith(CONNECTION_EXCEPTION_CLASS)) {
    return new UpstreamUnavailable(`PostgreSQL is unavailable ${on} (SQLSTATE ${code}); retry later`, { cause: error });
  }
  if (LOGIN_FAILED_SQLSTATES.has(code)) {
    return new UpstreamRejected(
      `PostgreSQL rejected the login of admin role ${context.adminRole} ${on} (SQLSTATE ${code}); ` +
        `check the password in local secret ${context.passwordSecret}, the role's LOGIN attribute and pg_hba.conf`,
      { cause: error },
    );
  }
  if (code === INSUFFICIENT_PRIVILEGE) {
    return new UpstreamRejected(
      `admin role ${context.adminRole} lacks the privilege to ${action} ${on} (SQLSTATE ${code}); ` +
        "grant it CREATEROLE and ADMIN OPTION on the roles in role.member_of",
      { cause: error },
    );
  }
  if (code === INVALID_DATABASE) {
    return new UpstreamRejected(`the database does not exist ${on} (SQLSTATE ${code}); check connection.database`, { cause: error });
  }
  if (code === DEPENDENT_OBJECTS) {
    return new UpstreamRejected(
      `the role still owns objects or has privileges in another database ${on} (SQLSTATE ${code}); ` +
        "run DROP OWNED BY for the role in that database, then revoke again",
      { cause: error },
    );
  }
  if (SERVER_TIMEOUT_SQLSTATES.has(code)) {
    return new UpstreamTimeout(`PostgreSQL cancelled the statement to ${action} ${on} (SQLSTATE ${code}); retry later`, { cause: error });
  }
  return new UpstreamRejected(`PostgreSQL rejected the request to ${action} ${on} (SQLSTATE ${code})`, { cause: error });
}

function clientError(error: unknown, context: ErrorContext, on: string): unknown {
  const code = errorCode(error);
  if (code === undefined) {
    return error;
  }
  if (NETWORK_ERROR_CODES.has(code)) {
    const tlsHint = code === "ECONNRESET" ? ", and that the server accepts TLS when connection.ssl is require or verify-full" : "";
    return new UpstreamUnavailable(
      `PostgreSQL is unreachable ${on} (${code}); check that the server is running and that connection.host and connection.port are right${tlsHint}`,
      { cause: error },
    );
  }
  if (CLIENT_AUTH_ERROR_CODES.has(code)) {
    return new UpstreamRejected(`the login of admin role ${context.adminRole} failed ${on} (${code})`, { cause: error });
  }
  if (isTlsError(code)) {
    return new UpstreamRejected(
      `TLS verification of the server failed ${on} (${code}); check connection.ssl, connection.ca and the server certificate`,
      { cause: error },
    );
  }
  return error;
}

function errorCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) {
    return undefined;
  }
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

/** Node's TLS and certificate error codes, such as ERR_TLS_CERT_ALTNAME_INVALID and DEPTH_ZERO_SELF_SIGNED_CERT. */
function isTlsError(code: string): boolean {
  return code.startsWith("ERR_TLS_") || code.startsWith("ERR_SSL_") || code.includes("CERT") || code.includes("SIGNATURE");
}
