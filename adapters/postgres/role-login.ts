import postgres from "postgres";
import { UpstreamRejected } from "../errors.js";
import { runQuery } from "./abortable.js";
import { APPLICATION_NAME, sslOption } from "./connection-pools.js";
import { type ErrorContext, loginFailureCode, toAdapterError } from "./postgres-errors.js";
import type { PostgresConnectionSettings } from "./postgres-settings.js";

/** Seconds the connection of a login check gets to close after its query. */
const LOGIN_END_TIMEOUT_SECONDS = 1;
/** SQLSTATE insufficient_privilege: at login, the role lacks CONNECT on the database. */
const INSUFFICIENT_PRIVILEGE = "42501";

/** A role and the password to log in with. */
export interface RoleLogin {
  username: string;
  password: string;
}

/** Password that a login check tries, as its error message names it. */
export type CheckedPassword = "new" | "given";

/**
 * Logs in as `login.username` on a new connection to the server and database of
 * `connection`, outside the admin pool, and runs `select 1`. Throws what postgres.js
 * threw; `roleLoginError` maps it.
 */
export async function checkRoleLogin(
  connection: PostgresConnectionSettings,
  login: RoleLogin,
  signal: AbortSignal,
  connectTimeoutSeconds: number,
): Promise<void> {
  const sql = postgres({
    host: connection.host,
    port: connection.port,
    database: connection.database,
    username: login.username,
    password: login.password,
    ssl: sslOption(connection),
    max: 1,
    connect_timeout: connectTimeoutSeconds,
    prepare: false,
    fetch_types: false,
    onnotice: () => undefined,
    connection: { application_name: APPLICATION_NAME },
  });

  try {
    await runQuery(signal, sql`select 1`);
  } finally {
    const ending = sql.end({ timeout: LOGIN_END_TIMEOUT_SECONDS });
    // After an abort during the connection attempt, postgres.js 3.4 keeps the connection
    // until the end timeout, so an aborted call returns without waiting for it.
    if (!signal.aborted) {
      await ending;
    }
  }
}

/**
 * Maps a failed login check to an `AdapterError`. A login that the server rejected
 * becomes `UpstreamRejected` naming the role. The cause is a wrong password, NOLOGIN,
 * an expired VALID UNTIL or pg_hba.conf. Other failures are mapped as for admin calls.
 */
export function roleLoginError(error: unknown, context: ErrorContext, roleName: string, password: CheckedPassword): unknown {
  const on = `on ${context.server} for secret ${context.secretName}`;

  const failure = loginFailureCode(error);
  if (failure !== undefined) {
    const nextStep =
      password === "given"
        ? `give the role's current password as value {"password": ...}, and check the role's LOGIN attribute, VALID UNTIL and pg_hba.conf`
        : "check the role's LOGIN attribute, VALID UNTIL and pg_hba.conf";
    return new UpstreamRejected(`login with the ${password} password failed for role ${roleName} ${on} (${failure}); ${nextStep}`, {
      cause: error,
    });
  }

  if (error instanceof postgres.PostgresError && error.code === INSUFFICIENT_PRIVILEGE) {
    return new UpstreamRejected(
      `role ${roleName} may not connect to the database ${on} (SQLSTATE ${error.code}); grant it CONNECT on the database`,
      { cause: error },
    );
  }
  return toAdapterError(error, context, `log in as role ${roleName}`);
}
