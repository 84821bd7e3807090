import type { Logger } from "pino";
import postgres from "postgres";
import type { AdapterCall, CreatePendingRequest, IssuedCredential, IssueRequest, PendingVersion, VersionRef } from "../contract.js";
import { UpstreamNotFound, UpstreamRejected } from "../errors.js";
import type { ValueSealer } from "../local/value-sealer.js";
import { raceAbort } from "./abortable.js";
import type { ConnectionPools } from "./connection-pools.js";
import { type ErrorContext, toAdapterError } from "./postgres-errors.js";
import type { PostgresStaticSettings } from "./postgres-settings.js";
import { callSettings, type PreparedCall, prepareCall } from "./prepare-call.js";
import { newPassword } from "./role-credentials.js";
import { checkRoleLogin, type RoleLogin, roleLoginError } from "./role-login.js";
import { type RoleAttributes, readRoleAttributes, setRolePassword, tryRolePassword } from "./role-statements.js";
import { newScramVerifier } from "./scram-verifier.js";
import { givenPassword, nextVersion, openRoleLogin, sealRoleLogin } from "./static-role-value.js";

/** SQLSTATE insufficient_privilege: the admin may not alter the role. */
const INSUFFICIENT_PRIVILEGE = "42501";

const FIRST_VALUE_REQUIRED = `a static PostgreSQL secret needs the role's current password as its first value: give value {"password": ...}`;

export interface StaticRoleRotationOptions {
  pools: ConnectionPools;
  sealer: ValueSealer;
  /** Seconds a login check may take to connect, TLS and login included. */
  connectTimeoutSeconds: number;
  logger: Pick<Logger, "warn"> | undefined;
}

/**
 * Static PostgreSQL secrets: one existing login role whose password the broker rotates.
 * Each version's value, `{"username", "password"}`, is sealed as the local adapter seals
 * its values, and the broker stores it. The first version is the role's existing
 * password, given by the operator. Later versions get a new password, which
 * `setPending` sets with ALTER ROLE and `testPending` proves by logging in.
 */
export class StaticRoleRotation {
  constructor(private readonly options: StaticRoleRotationOptions) {}

  /** Returns the value of the current version; nothing upstream changes. */
  async issue(call: AdapterCall, request: IssueRequest): Promise<IssuedCredential> {
    const { current } = request;
    if (!current) {
      throw new UpstreamNotFound(`secret ${call.secret.name} has no current version; ${FIRST_VALUE_REQUIRED}`);
    }

    const login = await openRoleLogin(this.options.sealer, call.secret, current);
    return { data: { username: login.username, password: login.password }, version: current.version, upstreamLeaseId: null };
  }

  /**
   * Seals the next version without changing the role. The first version takes
   * `request.value`, after a login with it proves that it is the role's password. Later
   * versions take `request.value` or a generated password (the secret's generate policy
   * is not used). A retry with the same rotation id gets the same version number with
   * another password, and the broker keeps one of them.
   */
  async createPending(call: AdapterCall, request: CreatePendingRequest): Promise<PendingVersion> {
    const { secret } = call;
    const { settings } = callSettings(call, "static");
    const roleName = settings.role.name;
    const isFirstVersion = request.current === null;

    if (isFirstVersion && request.value === undefined) {
      throw new UpstreamRejected(`secret ${secret.name} has no version yet. ${FIRST_VALUE_REQUIRED}`);
    }
    const password = request.value === undefined ? newPassword() : givenPassword(secret, roleName, request.value, isFirstVersion);
    const login: RoleLogin = { username: roleName, password };

    if (isFirstVersion) {
      await this.#checkGivenPassword(call, login);
    }

    const version = nextVersion(secret, request.current);
    const sealedValue = await sealRoleLogin(this.options.sealer, secret, version, login);
    return { version, sealedValue, data: { username: roleName, password } };
  }

  /** Sets the role's password to the pending one, sending only its SCRAM verifier. */
  async setPending(call: AdapterCall, pending: VersionRef): Promise<void> {
    const { settings } = callSettings(call, "static");
    const login = await openRoleLogin(this.options.sealer, call.secret, pending, settings.role.name);

    await this.#setPassword(call, login);
  }

  /** Logs in as the role with the pending password on a new connection; a rejected login is `UpstreamRejected`. */
  async testPending(call: AdapterCall, pending: VersionRef): Promise<void> {
    const { settings, context } = callSettings(call, "static");
    const login = await openRoleLogin(this.options.sealer, call.secret, pending, settings.role.name);

    try {
      await checkRoleLogin(settings.connection, login, call.signal, this.options.connectTimeoutSeconds);
    } catch (error) {
      throw roleLoginError(error, context, login.username, "new");
    }
  }

  /**
   * Sets the role's password back to the password of `current`, whether or not
   * `setPending` ran, so that a repeated call does no harm. Without a current version,
   * the role still has the password that the operator gave, and nothing changes.
   */
  async discardPending(call: AdapterCall, pending: VersionRef, current: VersionRef | null): Promise<void> {
    if (current === null) {
      return;
    }
    if (current.sealedValue === null) {
      this.options.logger?.warn(
        { secretId: call.secret.id, version: current.version, pendingVersion: pending.version },
        "current version has no stored value, so its password cannot be restored; if setPending ran, the role has the pending password",
      );
      return;
    }

    const { settings } = callSettings(call, "static");
    const login = await openRoleLogin(this.options.sealer, call.secret, current, settings.role.name);
    await this.#setPassword(call, login);
  }

  async #setPassword(call: AdapterCall, login: RoleLogin): Promise<void> {
    await setStaticRolePassword(this.options.pools, call, login);
  }

  /** Proves that an operator-supplied first value is the role's password; the role is not changed. */
  async #checkGivenPassword(call: AdapterCall, login: RoleLogin): Promise<void> {
    const prepared = await prepareCall(this.options.pools, call, "static");
    await requireRotatableRole(call, prepared);

    try {
      await checkRoleLogin(prepared.settings.connection, login, call.signal, this.options.connectTimeoutSeconds);
    } catch (error) {
      throw roleLoginError(error, prepared.context, login.username, "given");
    }
  }
}

/**
 * Sets the password of the static role in the call's settings with ALTER ROLE, sending
 * only its SCRAM verifier. Rejects a role that is missing, a superuser or the admin
 * role. The AWS Secrets Manager adapter uses it for database secrets too.
 */
export async function setStaticRolePassword(pools: ConnectionPools, call: AdapterCall, login: RoleLogin): Promise<void> {
  const prepared = await prepareCall(pools, call, "static");
  await requireRotatableRole(call, prepared);

  const verifier = await newScramVerifier(login.password);
  let found: boolean;
  try {
    found = await raceAbort(call.signal, setRolePassword(prepared.pool, call.signal, login.username, verifier));
  } catch (error) {
    throw alterRoleError(error, prepared.context, login.username);
  }
  if (!found) {
    throw roleNotFound(prepared.context, login.username);
  }
}

/** Rejects a role that does not exist, is a superuser or is the admin role the broker logs in as. */
async function requireRotatableRole(call: AdapterCall, prepared: PreparedCall<PostgresStaticSettings>): Promise<void> {
  const problem = await rotatableRoleProblem(call, prepared);
  if (problem !== null) {
    throw problem;
  }
}

/**
 * Returns why the static role in the settings cannot be rotated: it does not exist, is a
 * superuser or is the admin role the broker logs in as. Returns null for a rotatable
 * role, and throws the mapped error when the role cannot be read. Messages tell the
 * operator to correct `setting`, the setting that named the role.
 */
export async function rotatableRoleProblem(
  call: AdapterCall,
  prepared: PreparedCall<PostgresStaticSettings>,
  setting = "role.name",
): Promise<UpstreamNotFound | UpstreamRejected | null> {
  const { settings, pool, context } = prepared;
  const roleName = settings.role.name;
  const on = `on ${context.server} for secret ${context.secretName}`;

  let attributes: RoleAttributes | undefined;
  try {
    attributes = await raceAbort(call.signal, readRoleAttributes(pool, call.signal, roleName));
  } catch (error) {
    throw toAdapterError(error, context, `read role ${roleName}`);
  }

  if (!attributes) {
    return roleNotFound(context, roleName, setting);
  }
  if (attributes.isCurrentUser) {
    return new UpstreamRejected(
      `role ${roleName} is the admin role the broker logs in as ${on}; the broker does not rotate its own login, so name another role in ${setting}`,
    );
  }
  if (attributes.superuser) {
    return new UpstreamRejected(
      `role ${roleName} is a superuser ${on}; the broker does not rotate superuser passwords, so name a non-superuser login role in ${setting}`,
    );
  }
  return null;
}

/**
 * Returns why the admin may not set the password of the static role in the settings,
 * or null when it may. It runs ALTER ROLE ... PASSWORD with a random verifier in a
 * transaction that is rolled back, so that the server's own privilege rules decide and
 * the role keeps its password. Other failures throw the mapped error.
 */
export async function alterableRoleProblem(call: AdapterCall, prepared: PreparedCall<PostgresStaticSettings>): Promise<UpstreamRejected | null> {
  const { settings, pool, context } = prepared;
  const roleName = settings.role.name;
  try {
    await raceAbort(call.signal, tryRolePassword(pool, call.signal, roleName, await newScramVerifier(newPassword())));
    return null;
  } catch (error) {
    const mapped = alterRoleError(error, context, roleName);
    if (error instanceof postgres.PostgresError && error.code === INSUFFICIENT_PRIVILEGE) {
      return mapped as UpstreamRejected;
    }
    throw mapped;
  }
}

function roleNotFound(context: ErrorContext, roleName: string, setting = "role.name"): UpstreamNotFound {
  return new UpstreamNotFound(
    `role ${roleName} does not exist on ${context.server} for secret ${context.secretName}; create it or correct ${setting}`,
  );
}

/** Maps a failed ALTER ROLE; the statement, which contains the verifier, stays on the cause only. */
function alterRoleError(error: unknown, context: ErrorContext, roleName: string): unknown {
  if (error instanceof postgres.PostgresError && error.code === INSUFFICIENT_PRIVILEGE) {
    return new UpstreamRejected(
      `admin role ${context.adminRole} may not set the password of role ${roleName} on ${context.server} ` +
        `for secret ${context.secretName} (SQLSTATE ${error.code}); grant it CREATEROLE, and on PostgreSQL 16 and later ADMIN OPTION on ${roleName}`,
      { cause: error },
    );
  }
  return toAdapterError(error, context, `set the password of role ${roleName}`);
}
