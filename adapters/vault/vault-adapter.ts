import type { Logger } from "pino";
import type {
  AdapterCall,
  CreatePendingRequest,
  IssuedCredential,
  IssueRequest,
  PendingVersion,
  RenewedCredential,
  RevokedAll,
  SecretAdapter,
  SecretKind,
  UnrestoredRollback,
  UpstreamLease,
  VersionRef,
} from "../contract.js";
import { InvalidAdapterSettings, UpstreamRejected } from "../errors.js";
import type { ValueSealer } from "../local/value-sealer.js";
import { createDynamicCredential, readStaticRoleCredential, requireDatabaseRole } from "./database-credentials.js";
import { readKvVersion } from "./kv-store.js";
import { type DeriveSeed, KvRotation } from "./kv-rotation.js";
import { StaticRoleRotation } from "./static-role-rotation.js";
import { renewVaultLease, requireOwnLease, revokeVaultLease, revokeVaultLeasePrefix, rolePrefix } from "./vault-leases.js";
import { VaultCredentialMissing } from "./vault-errors.js";
import type { VaultTokenEvent } from "./vault-session.js";
import { type PreparedVaultCall, VaultSessions } from "./vault-sessions.js";
import { describeLocation, parseVaultSettings, type VaultDynamicSettings, type VaultSettings, type VaultStaticSettings } from "./vault-settings.js";

const ROTATION_UNSUPPORTED = "dynamic Vault secrets do not rotate; each lease gets its own database credential, so revoke leases to end credentials";

export interface VaultAdapterOptions {
  /** Seals the copies of written values that the test step compares with; the broker's data keys. */
  sealer: ValueSealer;
  /** The broker's clock, which Vault's relative TTLs count from; the system clock by default. */
  now?: () => Date;
  logger?: Pick<Logger, "info" | "warn">;
  /** Counts the broker token's lifecycle events, for the metric. */
  onTokenEvent?: (event: VaultTokenEvent) => void;
  /**
   * Derives the seed of a KV rotation's generated value from a broker key, so that a
   * retried create step generates the value its first attempt may have written. Without
   * it values are random, and such a retry stops with a check-and-set conflict.
   */
  deriveSeed?: DeriveSeed;
}

/**
 * HashiCorp Vault (or OpenBao) through node-vault. Static secrets are KV version 2
 * secrets, whose Vault version number is the broker's version, or database static roles.
 * Dynamic secrets are database credentials from `<mount>/creds/<role>`, each with a Vault
 * lease that the broker's lease wraps: its id is the upstream lease id, and the broker's
 * lease ends no later than Vault's.
 */
export class VaultAdapter implements SecretAdapter {
  readonly name = "vault";
  readonly kinds: readonly SecretKind[] = ["static", "dynamic"];

  readonly #sessions: VaultSessions;
  readonly #now: () => Date;
  readonly #logger: Pick<Logger, "info" | "warn"> | undefined;
  readonly #kv: KvRotation;
  readonly #staticRoles: StaticRoleRotation;

  constructor(options: VaultAdapterOptions) {
    this.#now = options.now ?? (() => new Date());
    this.#logger = options.logger;
    this.#sessions = new VaultSessions({ now: this.#now, logger: options.logger, onTokenEvent: options.onTokenEvent ?? (() => undefined) });
    this.#kv = new KvRotation(options.sealer, options.logger, options.deriveSeed);
    this.#staticRoles = new StaticRoleRotation(options.sealer, options.logger);
  }

  parseSettings(kind: SecretKind, settings: unknown): Record<string, unknown> {
    return parseVaultSettings(kind, settings);
  }

  /** Returns a static secret's KV path or static role, on its Vault server and namespace. */
  upstreamKey(settings: Record<string, unknown>): string | null {
    const parsed = settings as unknown as VaultSettings;
    return "database" in parsed || parsed.kv || parsed.static_role ? describeLocation(parsed) : null;
  }

  /** Tells whether a dynamic secret sets `database.dedicated_role`: it ends its role's leases by prefix, so no other secret may use that role. */
  claimsUpstream(settings: Record<string, unknown>): boolean {
    return (settings as unknown as VaultDynamicSettings).database?.dedicated_role === true;
  }

  /**
   * Checks a new dynamic secret against Vault: the broker's login works and the database
   * role exists (which needs read on `<mount>/roles/<role>`). A static secret's first
   * version reads Vault already, so nothing is checked here.
   */
  async verifyUpstream(call: AdapterCall): Promise<void> {
    if (call.secret.kind !== "dynamic") {
      return;
    }
    try {
      await requireDatabaseRole(await this.#sessions.prepare(call, "dynamic"));
    } catch (error) {
      if (error instanceof VaultCredentialMissing) {
        throw new InvalidAdapterSettings([{ name: error.setting, reason: error.message }]);
      }
      throw error;
    }
  }

  /**
   * Static: reads the KV version that is current in the broker (Vault's latest when the
   * broker has none yet), or the static role's current password. Dynamic: creates a
   * credential with a Vault lease, shortened to the broker's expiry when Vault granted more.
   */
  async issue(call: AdapterCall, request: IssueRequest): Promise<IssuedCredential> {
    if (call.secret.kind === "dynamic") {
      return this.#issueDynamic(call, request);
    }
    const prepared = await this.#sessions.prepare(call, "static");
    if (prepared.settings.static_role) {
      const credential = await readStaticRoleCredential(prepared, call.secret.name);
      return { data: credential.data, version: credential.lastRotation, upstreamLeaseId: null };
    }
    const read = await readKvVersion(prepared, call.secret.name, request.current?.version);
    return { data: read.data, version: read.version, upstreamLeaseId: null };
  }

  /** Renews the Vault lease to `expiresAt`; returns the expiry Vault granted, which may be earlier. */
  async renew(call: AdapterCall, lease: UpstreamLease, expiresAt: Date): Promise<RenewedCredential | void> {
    if (call.secret.kind === "static") {
      return;
    }
    const prepared = await this.#sessions.prepare(call, "dynamic");
    requireOwnLease(prepared, call.secret.name, lease.upstreamLeaseId);

    const now = this.#now();
    const increment = Math.max(1, Math.ceil((expiresAt.getTime() - now.getTime()) / 1000));
    const renewed = await renewVaultLease(prepared, call.secret.name, lease.upstreamLeaseId, increment);
    return { expiresAt: new Date(now.getTime() + renewed.leaseDuration * 1000) };
  }

  /** Revokes the Vault lease; a lease Vault no longer has counts as revoked. Static values have no lease. */
  async revoke(call: AdapterCall, lease: UpstreamLease): Promise<void> {
    if (call.secret.kind === "static") {
      return;
    }
    const prepared = await this.#sessions.prepare(call, "dynamic");
    requireOwnLease(prepared, call.secret.name, lease.upstreamLeaseId);
    await revokeVaultLease(prepared, lease.upstreamLeaseId);
  }

  /**
   * Revokes every Vault lease of the secret's role with one sys/leases/revoke-prefix
   * request on `<mount>/creds/<role>/`, which needs sudo. That request would also end
   * leases other Vault clients obtained from the role. So it runs only for a role that the
   * settings declare dedicated to the broker (`database.dedicated_role`), and otherwise
   * returns null.
   */
  async revokeAll(call: AdapterCall): Promise<RevokedAll | null> {
    if (call.secret.kind !== "dynamic" || !parseVaultSettings("dynamic", call.secret.settings).database.dedicated_role) {
      return null;
    }
    const prepared = await this.#sessions.prepare(call, "dynamic");
    const prefix = rolePrefix(prepared.settings);
    await revokeVaultLeasePrefix(prepared, prefix);
    return { upstreamLeaseIdPrefix: prefix };
  }

  async createPending(call: AdapterCall, request: CreatePendingRequest): Promise<PendingVersion> {
    const prepared = await this.#prepareStatic(call);
    return prepared.settings.static_role
      ? this.#staticRoles.createPending(call, prepared, request)
      : this.#kv.createPending(call, prepared, request);
  }

  /** Reads Vault's current KV version or static-role password, for a re-sync. */
  async readLatest(call: AdapterCall): Promise<PendingVersion> {
    const prepared = await this.#prepareStatic(call);
    return prepared.settings.static_role ? this.#staticRoles.readLatest(call, prepared) : this.#kv.readLatest(call, prepared);
  }

  /** Nothing to do: createPending already wrote the new version (KV) or had Vault rotate the password (static role). */
  async setPending(call: AdapterCall, _pending: VersionRef): Promise<void> {
    requireStatic(call);
  }

  async testPending(call: AdapterCall, pending: VersionRef): Promise<void> {
    const prepared = await this.#prepareStatic(call);
    return prepared.settings.static_role
      ? this.#staticRoles.testPending(call, prepared, pending)
      : this.#kv.testPending(call, prepared, pending);
  }

  /** Nothing to promote in Vault: the new version is already its latest; the broker moves its stages. */
  async finishPending(call: AdapterCall, _pending: VersionRef, _previous: VersionRef | null): Promise<void> {
    requireStatic(call);
  }

  async discardPending(call: AdapterCall, pending: VersionRef, current: VersionRef | null): Promise<UnrestoredRollback | void> {
    const prepared = await this.#prepareStatic(call);
    if (prepared.settings.static_role) {
      return this.#staticRoles.discardPending(call, prepared, pending);
    }
    await this.#kv.discardPending(call, prepared, pending, current);
  }

  async close(): Promise<void> {
    this.#sessions.closeAll();
  }

  async #issueDynamic(call: AdapterCall, request: IssueRequest): Promise<IssuedCredential> {
    const prepared = await this.#sessions.prepare(call, "dynamic");
    const now = this.#now();
    const credential = await createDynamicCredential(prepared, call.secret.name);
    const vaultExpiresAt = new Date(now.getTime() + credential.leaseDuration * 1000);
    const expiresAt = await this.#shortenLease(prepared, call, credential.leaseId, vaultExpiresAt, request.expiresAt, now);
    return { data: credential.data, version: null, upstreamLeaseId: credential.leaseId, expiresAt };
  }

  /**
   * Renews a new lease down to the broker's expiry when Vault granted more (a renewal
   * counts from now, so a smaller increment shortens it), so that the credential does not
   * outlive the broker's lease. Returns the lease's expiry.
   */
  async #shortenLease(prepared: PreparedVaultCall<VaultDynamicSettings>, call: AdapterCall, leaseId: string, vaultExpiresAt: Date, brokerExpiresAt: Date, now: Date): Promise<Date> {
    if (vaultExpiresAt <= brokerExpiresAt) {
      return vaultExpiresAt;
    }
    const increment = Math.max(1, Math.ceil((brokerExpiresAt.getTime() - now.getTime()) / 1000));
    try {
      const renewed = await renewVaultLease(prepared, call.secret.name, leaseId, increment);
      return new Date(now.getTime() + Math.min(renewed.leaseDuration, increment) * 1000);
    } catch (error) {
      // The credential is usable either way; the broker revokes it when its own lease ends.
      this.#logger?.warn({ secretId: call.secret.id, upstreamLeaseId: leaseId, err: { message: (error as Error).message } }, "could not shorten the Vault lease to the broker's lease");
      return brokerExpiresAt;
    }
  }

  async #prepareStatic(call: AdapterCall): Promise<PreparedVaultCall<VaultStaticSettings>> {
    requireStatic(call);
    return this.#sessions.prepare(call, "static");
  }
}

function requireStatic(call: AdapterCall): void {
  if (call.secret.kind !== "static") {
    throw new UpstreamRejected(ROTATION_UNSUPPORTED);
  }
}
