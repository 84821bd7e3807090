import type postgres from "postgres";
import type { Logger } from "pino";
import type {
  AdapterCall,
  CreatePendingRequest,
  IssuedCredential,
  IssueRequest,
  PendingVersion,
  SecretAdapter,
  SecretKind,
  UpstreamLease,
  VersionRef,
} from "../contract.js";
import { UpstreamNotFound, UpstreamRejected } from "../errors.js";
import type { ValueSealer } from "../local/value-sealer.js";
import { CallAborted, raceAbort } from "./abortable.js";
import { ConnectionPools } from "./connection-pools.js";
import { toAdapterError } from "./postgres-errors.js";
import { parsePostgresSettings } from "./postgres-settings.js";
import { prepareCall } from "./prepare-call.js";
import { isDynamicRoleName, newPassword, newRoleName } from "./role-credentials.js";
import { createDynamicRole, dropDynamicRole, setRoleExpiry } from "./role-statements.js";
import { newScramVerifier } from "./scram-verifier.js";
import { StaticRoleRotation } from "./static-role-rotation.js";

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
  /**
   * Seals the values of static secrets, as for the local adapter. Without it the adapter
   * serves dynamic secrets only.
   */
  sealer?: ValueSealer;
}

/**
 * PostgreSQL credentials of two kinds. Dynamic secrets work as Vault's database secrets
 * engine: each lease gets its own login role, created in the granted group roles with
 * VALID UNTIL set to the lease expiry, and dropped on revoke. Static secrets rotate the
 * password of one existing login role through the four rotation steps, in
 * `StaticRoleRotation`.
 */
export class PostgresAdapter implements SecretAdapter {
  readonly name = "postgres";
  readonly kinds: readonly SecretKind[];

  readonly #pools: ConnectionPools;
  readonly #logger: Pick<Logger, "warn"> | undefined;
  readonly #staticRoles: StaticRoleRotation | undefined;

  constructor(options: PostgresAdapterOptions = {}) {
    const connectTimeoutSeconds = options.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_SECONDS;
    const idleTimeoutSeconds = options.idleTimeoutSeconds ?? DEFAULT_IDLE_TIMEOUT_SECONDS;
    requirePositiveSeconds("connectTimeoutSeconds", connectTimeoutSeconds);
    requirePositiveSeconds("idleTimeoutSeconds", idleTimeoutSeconds);

    this.#pools = new ConnectionPools({ connectTimeoutSeconds, idleTimeoutSeconds });
    this.#logger = options.logger;
    this.#staticRoles =
      options.sealer === undefined
        ? undefined
        : new StaticRoleRotation({ pools: this.#pools, sealer: options.sealer, connectTimeoutSeconds, logger: options.logger });
    this.kinds = this.#staticRoles === undefined ? ["dynamic"] : ["dynamic", "static"];
  }

  /** Validates settings of either kind. An adapter without a sealer validates static settings too, although the registry sends it none. */
  parseSettings(kind: SecretKind, settings: unknown): Record<string, unknown> {
    return parsePostgresSettings(kind, settings);
  }

  async issue(call: AdapterCall, request: IssueRequest): Promise<IssuedCredential> {
    if (call.secret.kind === "static") {
      return this.#staticRolesFor(call).issue(call, request);
    }

    requireValidDate(request.expiresAt);
    const { settings, pool, context } = await prepareCall(this.#pools, call, "dynamic");

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

  /** Moves the VALID UNTIL of a dynamic lease's role to `expiresAt`. A static secret has no upstream lease, so nothing changes. */
  async renew(call: AdapterCall, lease: UpstreamLease, expiresAt: Date): Promise<void> {
    if (call.secret.kind === "static") {
      return;
    }

    requireValidDate(expiresAt);
    const roleName = requireDynamicRoleName(call, lease);
    const { pool, context } = await prepareCall(this.#pools, call, "dynamic");

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

  /**
   * Drops the role of a dynamic lease; a role that is already gone counts as revoked.
   * A static secret's role outlives its leases, so nothing happens for it.
   */
  async revoke(call: AdapterCall, lease: UpstreamLease): Promise<void> {
    if (call.secret.kind === "static") {
      return;
    }

    const roleName = requireDynamicRoleName(call, lease);
    const { pool, context } = await prepareCall(this.#pools, call, "dynamic");

    try {
      await raceAbort(call.signal, dropDynamicRole(pool, call.signal, roleName));
    } catch (error) {
      throw toAdapterError(error, context, `revoke role ${roleName}`);
    }
  }

  async createPending(call: AdapterCall, request: CreatePendingRequest): Promise<PendingVersion> {
    return this.#staticRolesFor(call).createPending(call, request);
  }

  async setPending(call: AdapterCall, pending: VersionRef): Promise<void> {
    await this.#staticRolesFor(call).setPending(call, pending);
  }

  async testPending(call: AdapterCall, pending: VersionRef): Promise<void> {
    await this.#staticRolesFor(call).testPending(call, pending);
  }

  /** PostgreSQL has no stages to promote: the password that setPending set is in use already. */
  async finishPending(call: AdapterCall, _pending: VersionRef, _previous: VersionRef | null): Promise<void> {
    // Rejects as the other rotation steps do when the secret is dynamic or the adapter has no sealer.
    this.#staticRolesFor(call);
  }

  async discardPending(call: AdapterCall, pending: VersionRef, current: VersionRef | null): Promise<void> {
    await this.#staticRolesFor(call).discardPending(call, pending, current);
  }

  async close(): Promise<void> {
    await this.#pools.closeAll();
  }

  /** Returns the static rotation for a static secret; rejects dynamic secrets, and static ones on an adapter without a sealer. */
  #staticRolesFor(call: AdapterCall): StaticRoleRotation {
    if (call.secret.kind !== "static") {
      throw new UpstreamRejected(ROTATION_UNSUPPORTED);
    }
    if (this.#staticRoles === undefined) {
      throw new UpstreamRejected(
        `secret ${call.secret.name} is static, but this postgres adapter was built without a value sealer; construct it with options.sealer`,
      );
    }
    return this.#staticRoles;
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
