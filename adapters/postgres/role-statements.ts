import postgres from "postgres";
import { CallAborted, runQuery } from "./abortable.js";

/** SQLSTATE undefined_object: the role does not exist. */
const UNDEFINED_OBJECT = "42704";
/** CONNECTION LIMIT -1 means no limit. */
const NO_CONNECTION_LIMIT = -1;
/** How long revoke waits for each terminated session to exit, in milliseconds. */
const SESSION_EXIT_WAIT_MS = 5000;
/** Lease ids that may go into the role's comment verbatim. */
const PLAIN_LEASE_ID = /^[A-Za-z0-9_-]{1,100}$/;
/**
 * Characters a literal inlined into utility statements may contain. Quotes and
 * backslashes are excluded, so the value cannot end the literal.
 */
const SAFE_LITERAL = /^[A-Za-z0-9+/=$:._ -]+$/;

/** Attributes of the role that `createDynamicRole` creates. */
export interface DynamicRoleSpec {
  name: string;
  /** SCRAM-SHA-256 secret of the password, never the password itself. */
  passwordVerifier: string;
  validUntil: Date;
  connectionLimit: number | undefined;
  /** Group roles, already checked against the identifier pattern of the settings. */
  memberOf: readonly string[];
  /** The broker's lease id, written to the role's comment so that operators can trace the role. */
  leaseId: string;
}

/** Raised when the GRANT of group role `groupRole` to the new role fails. */
export class GroupRoleGrantFailed extends Error {
  override name = "GroupRoleGrantFailed";

  constructor(
    readonly groupRole: string,
    override readonly cause: postgres.PostgresError,
  ) {
    super(`grant of group role ${groupRole} failed with SQLSTATE ${cause.code}`, { cause });
  }
}

/** Sessions of a role were signalled but did not exit within SESSION_EXIT_WAIT_MS. */
export class RoleSessionsRemain extends Error {
  override name = "RoleSessionsRemain";

  constructor(readonly sessions: number) {
    super(`${sessions} session(s) did not exit within ${SESSION_EXIT_WAIT_MS} ms`);
  }
}

/**
 * Creates a login role with its password, expiry, connection limit and group roles in
 * one transaction, so that a failed GRANT leaves no role behind. CREATE ROLE and GRANT
 * take no bind parameters: identifiers are quoted by postgres.js and every literal
 * comes from a checked alphabet.
 */
export async function createDynamicRole(pool: postgres.Sql, signal: AbortSignal, spec: DynamicRoleSpec): Promise<void> {
  await pool.begin(async (tx) => {
    await runQuery(
      signal,
      tx`create role ${tx(spec.name)} with login inherit nosuperuser nocreatedb nocreaterole noreplication nobypassrls
           connection limit ${integerLiteral(tx, spec.connectionLimit ?? NO_CONNECTION_LIMIT)}
           password ${stringLiteral(tx, spec.passwordVerifier)}
           valid until ${stringLiteral(tx, spec.validUntil.toISOString())}`,
    );

    // A lease id of another shape is left out of the comment rather than escaped.
    if (PLAIN_LEASE_ID.test(spec.leaseId)) {
      await runQuery(signal, tx`comment on role ${tx(spec.name)} is ${stringLiteral(tx, `secrets-broker lease ${spec.leaseId}`)}`);
    }

    for (const groupRole of spec.memberOf) {
      await grantGroupRole(tx, signal, groupRole, spec.name);
    }

    // An abort that fired after the last statement still rolls the role back.
    if (signal.aborted) {
      throw new CallAborted("the call was aborted before the role was committed", { cause: signal.reason });
    }
  });
}

async function grantGroupRole(tx: postgres.TransactionSql, signal: AbortSignal, groupRole: string, roleName: string): Promise<void> {
  try {
    await runQuery(signal, tx`grant ${tx(groupRole)} to ${tx(roleName)}`);
  } catch (error) {
    if (error instanceof postgres.PostgresError) {
      throw new GroupRoleGrantFailed(groupRole, error);
    }
    throw error;
  }
}

/** Sets a role's VALID UNTIL. Returns false when the role does not exist. */
export async function setRoleExpiry(pool: postgres.Sql, signal: AbortSignal, roleName: string, validUntil: Date): Promise<boolean> {
  try {
    await runQuery(signal, pool`alter role ${pool(roleName)} valid until ${stringLiteral(pool, validUntil.toISOString())}`);
    return true;
  } catch (error) {
    if (isUndefinedRole(error)) {
      return false;
    }
    throw error;
  }
}

/**
 * Sets a role's password to a SCRAM-SHA-256 secret, so that the clear password never
 * reaches the server. Returns false when the role does not exist.
 */
export async function setRolePassword(pool: postgres.Sql, signal: AbortSignal, roleName: string, passwordVerifier: string): Promise<boolean> {
  try {
    await runQuery(signal, pool`alter role ${pool(roleName)} password ${stringLiteral(pool, passwordVerifier)}`);
    return true;
  } catch (error) {
    if (isUndefinedRole(error)) {
      return false;
    }
    throw error;
  }
}

/**
 * Runs ALTER ROLE ... PASSWORD in a transaction and rolls it back, so that the role keeps
 * its password. Throws what the statement threw, such as insufficient_privilege.
 */
export async function tryRolePassword(pool: postgres.Sql, signal: AbortSignal, roleName: string, passwordVerifier: string): Promise<void> {
  try {
    await pool.begin(async (tx) => {
      await runQuery(signal, tx`alter role ${tx(roleName)} password ${stringLiteral(tx, passwordVerifier)}`);
      throw new RollbackRequested();
    });
  } catch (error) {
    if (!(error instanceof RollbackRequested)) {
      throw error;
    }
  }
}

/** Thrown inside a transaction to roll it back on purpose. */
class RollbackRequested extends Error {
  override name = "RollbackRequested";
}

/** Attributes of a role that decide whether the broker may change its password. */
export interface RoleAttributes {
  superuser: boolean;
  /** The role is the one the admin connection is logged in as. */
  isCurrentUser: boolean;
}

/** Reads whether `roleName` is a superuser or the connection's own role; undefined when the role does not exist. */
export async function readRoleAttributes(pool: postgres.Sql, signal: AbortSignal, roleName: string): Promise<RoleAttributes | undefined> {
  const rows = await runQuery(
    signal,
    pool<RoleAttributes[]>`select rolsuper as superuser, rolname = current_user or rolname = session_user as "isCurrentUser"
                           from pg_roles where rolname = ${roleName}`,
  );
  return rows[0];
}

/**
 * Ends a role: blocks new logins, terminates its sessions on the whole server, drops
 * what it owns in the connected database, and drops the role. Returns false when the
 * role was already gone. Each step can be repeated, so a revoke that failed midway is
 * finished by calling this again.
 */
export async function dropDynamicRole(pool: postgres.Sql, signal: AbortSignal, roleName: string): Promise<boolean> {
  try {
    // NOLOGIN first, so that no new session starts between the termination and the drop.
    await runQuery(signal, pool`alter role ${pool(roleName)} nologin`);

    // Membership lets a non-superuser admin signal the role's backends and run DROP OWNED,
    // both of which PostgreSQL allows only to members of the role.
    await runQuery(signal, pool`grant ${pool(roleName)} to current_user`);

    const sessions = await runQuery(
      signal,
      pool<{ exited: boolean }[]>`select pg_terminate_backend(pid, ${SESSION_EXIT_WAIT_MS}) as exited
                                   from pg_stat_activity where usename = ${roleName}`,
    );
    const remaining = sessions.filter((session) => !session.exited).length;
    if (remaining > 0) {
      throw new RoleSessionsRemain(remaining);
    }

    await pool.begin(async (tx) => {
      await runQuery(signal, tx`drop owned by ${tx(roleName)}`);
      await runQuery(signal, tx`drop role if exists ${tx(roleName)}`);
    });
    return true;
  } catch (error) {
    if (isUndefinedRole(error)) {
      return false;
    }
    throw error;
  }
}

function isUndefinedRole(error: unknown): boolean {
  return error instanceof postgres.PostgresError && error.code === UNDEFINED_OBJECT;
}

function stringLiteral(sql: Pick<postgres.Sql, "unsafe">, value: string) {
  if (!SAFE_LITERAL.test(value)) {
    throw new RangeError("a literal for a utility statement contains characters outside [A-Za-z0-9+/=$:._ -]");
  }
  return sql.unsafe(`'${value}'`);
}

function integerLiteral(sql: Pick<postgres.Sql, "unsafe">, value: number) {
  if (!Number.isSafeInteger(value)) {
    throw new RangeError("a numeric literal for a utility statement must be a safe integer");
  }
  return sql.unsafe(String(value));
}
