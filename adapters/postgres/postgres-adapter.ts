import type postgres from "postgres";
import type { Logger } from "pino";
import type {
  AdapterCall,
  IssuedCredential,
  IssueRequest,
  PendingVersion,
  SecretAdapter,
  SecretKind,
  UpstreamLease,
} from "../contract.js";
import { UpstreamNotFound, UpstreamRejected } from "../errors.js";
import { CallAborted, raceAbort } from "./abortable.js";
import { ConnectionPools } from "./connection-pools.js";
import { type ErrorContext, toAdapterError } from "./postgres-errors.js";
import { type PostgresSettings, parsePostgresSettings } from "./postgres-settings.js";
import { isDynamicRoleName, newPassword, newRoleName } from "./role-credentials.js";
import { createDynamicRole, dropDynamicRole, setRoleExpiry } from "./role-statements.js";
import { newScramVerifier } from "./scram-verifier.js";

/** Defaults of the constructor options, in seconds. */
export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;
export const DEFAULT_IDLE_TIMEOUT_SECONDS = 30;
/** How long the drop of a role left behind by an aborted issue may take, in milliseconds. */
const ABANDONED_ROLE_DROP_TIMEOUT_MS = 30_000;

const ROTATION_UNSUPPORTED =
  "rotation of dynamic PostgreSQL secrets is not supported; each lease gets its own role, so revoke leases to end credentials";

export interface PostgresAdapterOptions {
  /** Seconds a connection attempt to PostgreSQL may take; 10 by default. */
  connectTimeoutSeconds?: number;
  /** Seconds an unused admin connection stays open; 30 by default. */
  idleTimeoutSeconds?: number;
  /** Receives warnings about cleanup that failed after a call had already returned. */
  logger?: Pick<Logger, "warn">;
}

/** Settings, admin pool and error context that every call starts from. */
interface PreparedCall {
  settings: PostgresSettings;
  pool: postgres.Sql;
  context: ErrorContext;
}

/**
 * Dynamic PostgreSQL credentials, as Vault's database secrets engine issues them: each
 * lease gets its own login role, created in the granted group roles with VALID UNTIL set
 * to the lease expiry, and dropped on revoke.
 */
export class PostgresAdapter implements SecretAdapter {
  readonly name = "postgres";
  readonly kinds: readonly SecretKind[] = ["dynamic"];

  readonly #pools: ConnectionPools;
  readonly #logger: Pick<Logger, "warn"> | undefined;

  constructor(options: PostgresAdapterOptions = {}) {
    const connectTimeoutSeconds = options.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_SECONDS;
    const idleTimeoutSeconds = options.idleTimeoutSeconds ?? DEFAULT_IDLE_TIMEOUT_SECONDS;
    requirePositiveSeconds("connectTimeoutSeconds", connectTimeoutSeconds);
    requirePositiveSeconds("idleTimeoutSeconds", idleTimeoutSeconds);

    this.#pools = new ConnectionPools({ connectTimeoutSeconds, idleTimeoutSeconds });
    this.#logger = options.logger;
  }

  parseSettings(kind: SecretKind, settings: unknown): Record<string, unknown> {
    return parsePostgresSettings(kind, settings);
  }

  async issue(call: AdapterCall, request: IssueRequest): Promise<IssuedCredential> {
    requireValidDate(request.expiresAt);
    const { settings, pool, context } = await this.#prepare(call);

    const username = newRoleName(settings.role.name_prefix);
    const password = newPassword();
    const creation = createDynamicRole(pool, call.signal, {
      name: username,
      passwordVerifier: await newScramVerifier(password),
      validUntil: request.expiresAt,
      connectionLimit: settings.role.connection_limit,
      memberOf: settings.role.member_of,
      leaseId: request.leaseId,
    });

    try {
      await raceAbort(call.signal, creation);
    } catch (error) {
      if (error instanceof CallAborted) {
        this.#dropIfCommitted(creation, pool, username, call.secret.id);
      }
      throw toAdapterError(error, context, `create role ${username}`);
    }
    return { data: { username, password }, version: null, upstreamLeaseId: username, expiresAt: request.expiresAt };
  }

  async renew(call: AdapterCall, lease: UpstreamLease, expiresAt: Date): Promise<void> {
    requireValidDate(expiresAt);
    const roleName = requireDynamicRoleName(call, lease);
    const { pool, context } = await this.#prepare(call);

    let found: boolean;
    try {
      found = await raceAbort(call.signal, setRoleExpiry(pool, call.signal, roleName, expiresAt));
    } catch (error) {
      throw toAdapterError(error, context, `renew role ${roleName}`);
    }
    if (!found) {
      throw new UpstreamNotFound(`role ${roleName} does not exist on ${context.server} for secret ${call.secret.name}; it was revoked or dropped`);
    }
  }

  /** Drops the role of `lease`; a role that is already gone counts as revoked. */
  async revoke(call: AdapterCall, lease: UpstreamLease): Promise<void> {
    const roleName = requireDynamicRoleName(call, lease);
    const { pool, context } = await this.#prepare(call);

    try {
      await raceAbort(call.signal, dropDynamicRole(pool, call.signal, roleName));
    } catch (error) {
      throw toAdapterError(error, context, `revoke role ${roleName}`);
    }
  }

  createPending(): Promise<PendingVersion> {
    return Promise.reject(new UpstreamRejected(ROTATION_UNSUPPORTED));
  }

  setPending(): Promise<void> {
    return Promise.reject(new UpstreamRejected(ROTATION_UNSUPPORTED));
  }

  testPending(): Promise<void> {
    return Promise.reject(new UpstreamRejected(ROTATION_UNSUPPORTED));
  }

  finishPending(): Promise<void> {
    return Promise.reject(new UpstreamRejected(ROTATION_UNSUPPORTED));
  }

  discardPending(): Promise<void> {
    return Promise.reject(new UpstreamRejected(ROTATION_UNSUPPORTED));
  }

  async close(): Promise<void> {
    await this.#pools.closeAll();
  }

  /** Validates the settings, reads the admin password from its local secret and picks the pool. */
  async #prepare(call: AdapterCall): Promise<PreparedCall> {
    const settings = parsePostgresSettings(call.secret.kind, call.secret.settings);
    const { connection } = settings;
    const context: ErrorContext = {
      secretName: call.secret.name,
      server: `${connection.host}:${connection.port}/${connection.database}`,
      adminRole: connection.username,
      passwordSecret: connection.password_secret,
    };

    let adminSecret: Record<string, string>;
    try {
      if (call.signal.aborted) {
        throw new CallAborted("the call was aborted before it started", { cause: call.signal.reason });
      }
      adminSecret = await raceAbort(call.signal, call.readLocalSecret(connection.password_secret));
    } catch (error) {
      throw toAdapterError(error, context, `read local secret ${connection.password_secret}`);
    }

    const password = adminSecret[connection.password_field];
    if (typeof password !== "string" || password === "") {
      throw new UpstreamRejected(
        `local secret ${connection.password_secret} has no field ${connection.password_field} for secret ${call.secret.name}; ` +
          "store the admin password there or set connection.password_field",
      );
    }
    return { settings, pool: this.#pools.poolFor(call.secret.id, settings, password), context };
  }

  /**
   * Drops a role whose issue was aborted while its transaction was committing. The
   * broker never learns the role's name, so nothing else would ever drop it.
   */
  #dropIfCommitted(creation: Promise<void>, pool: postgres.Sql, roleName: string, secretId: string): void {
    creation.then(
      async () => {
        try {
          await dropDynamicRole(pool, AbortSignal.timeout(ABANDONED_ROLE_DROP_TIMEOUT_MS), roleName);
        } catch (error) {
          this.#logger?.warn({ secretId, roleName, err: error }, "failed to drop the role of an aborted issue; drop it by hand");
        }
      },
      // NOTE: a rejected creation rolled back, unless the connection broke during COMMIT;
      // that rare case leaves a role whose password expires at VALID UNTIL but which is never dropped.
      () => undefined,
    );
  }
}

function requireDynamicRoleName(call: AdapterCall, lease: UpstreamLease): string {
  if (!isDynamicRoleName(lease.upstreamLeaseId)) {
    throw new UpstreamRejected(
      `upstream lease id of secret ${call.secret.name} does not match sb_<prefix>_<16 hex digits>; ` +
        "the adapter renews and revokes only roles it created, so no role was changed",
    );
  }
  return lease.upstreamLeaseId;
}

function requireValidDate(date: Date): void {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new RangeError("expiresAt must be a valid Date");
  }
}

function requirePositiveSeconds(option: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${option} must be a whole number of seconds, at least 1`);
  }
}
