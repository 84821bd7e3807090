import type { Logger } from "pino";
import { UpstreamRejected } from "../errors.js";
import { createVaultClient, type NodeVaultClient } from "./vault-client.js";
import { safeCause, toAdapterError, vaultStatus } from "./vault-errors.js";
import type { VaultAuth, VaultConnection } from "./vault-settings.js";

/** Token lifecycle events, as counted by the broker's metric. */
export type VaultTokenEvent = "login" | "login_failed" | "lookup" | "renew" | "renew_refused" | "expired";

export interface VaultSessionOptions {
  connection: VaultConnection;
  auth: VaultAuth;
  /** The token (token auth) or the secret_id (AppRole), read from the local secret the settings name. */
  credential: string;
  now: () => Date;
  logger: Pick<Logger, "info" | "warn"> | undefined;
  onTokenEvent: (event: VaultTokenEvent) => void;
}

/** The broker's token and what Vault reported about it; the token itself lives only on the client. */
interface TokenState {
  accessor: string;
  /** Null for a token without expiry. */
  expiresAt: Date | null;
  ttlSeconds: number;
  renewable: boolean;
}

/** A token is renewed once less than this fraction of its TTL remains. */
const RENEW_REMAINING_FRACTION = 0.5;
/** Renew at the latest this long before expiry, in milliseconds, so that a request in flight does not outlive the token. */
const RENEW_MIN_REMAINING_MS = 60_000;
/** Renewal refusals after which a token cannot be extended: 400 (not renewable, past max TTL) and 403 (expired or revoked). */
const RENEWAL_REFUSED_STATUSES = new Set([400, 403]);

/**
 * One Vault connection with the broker's own token. `run` makes sure the token is live
 * before a request. The first time, it logs in (AppRole) or looks the token up (token
 * auth). It renews the token with renew-self once half its TTL has passed, and logs in
 * again when Vault rejects the renewal or returns 403 for a token it had accepted.
 * Logs and errors name the token's accessor, never the token.
 */
export class VaultSession {
  readonly client: NodeVaultClient;
  #token: TokenState | undefined;
  #pending: Promise<void> | undefined;

  constructor(private readonly options: VaultSessionOptions) {
    this.client = createVaultClient(options.connection);
    if (options.auth.method === "token") {
      this.client.token = options.credential;
    }
  }

  /** Runs `request` with a live token; retries once after a fresh AppRole login when Vault returns 403. */
  async run<T>(request: (client: NodeVaultClient) => Promise<T>): Promise<T> {
    await this.ensureToken();
    try {
      return await request(this.client);
    } catch (error) {
      if (vaultStatus(error) !== 403 || this.options.auth.method !== "approle") {
        throw error;
      }
      this.options.logger?.warn({ accessor: this.#token?.accessor }, "Vault returned 403 with the broker's token; logging in again");
      this.#token = undefined;
      await this.ensureToken();
      return request(this.client);
    }
  }

  /** Tells whether this session serves `key`, the JSON of `[connection, auth]`. */
  describes(key: string): boolean {
    return JSON.stringify([this.options.connection, this.options.auth]) === key;
  }

  /** Ends this session's use of its token; the token itself expires in Vault. */
  forget(): void {
    this.#token = undefined;
    this.client.token = "";
  }

  private async ensureToken(): Promise<void> {
    if (this.#token && !this.renewalDue(this.#token)) {
      return;
    }
    // One login or renewal at a time; concurrent requests wait for it.
    this.#pending ??= this.refreshToken().finally(() => {
      this.#pending = undefined;
    });
    await this.#pending;
  }

  private renewalDue(token: TokenState): boolean {
    if (token.expiresAt === null) {
      return false;
    }
    const remainingMs = token.expiresAt.getTime() - this.options.now().getTime();
    return remainingMs < Math.max(token.ttlSeconds * 1000 * RENEW_REMAINING_FRACTION, RENEW_MIN_REMAINING_MS);
  }

  private async refreshToken(): Promise<void> {
    const token = this.#token;
    if (token === undefined) {
      this.#token = this.options.auth.method === "approle" ? await this.login() : await this.lookupSelf();
      return;
    }
    if (token.renewable && (await this.renewSelf(token))) {
      return;
    }
    if (this.options.auth.method === "approle") {
      this.#token = await this.login();
      return;
    }
    this.options.onTokenEvent("expired");
    throw new UpstreamRejected(
      `Vault's token for the broker (accessor ${token.accessor}) at ${this.options.connection.address} cannot be renewed; ` +
        `store a new token in local secret ${this.options.auth.token_secret}, or use AppRole auth so that the broker logs in again`,
    );
  }

  private async login(): Promise<TokenState> {
    const auth = this.options.auth;
    if (auth.method !== "approle") {
      throw new Error("login needs AppRole auth");
    }
    // A login sends no token: the one the client has expired or was refused.
    this.client.token = "";
    try {
      const response = await this.client.approleLogin({ mount_point: auth.mount, role_id: auth.role_id, secret_id: this.options.credential });
      const state = this.tokenFromAuth(response?.auth);
      this.options.onTokenEvent("login");
      this.options.logger?.info({ accessor: state.accessor, ttl: state.ttlSeconds, address: this.options.connection.address }, "logged in to Vault with AppRole");
      return state;
    } catch (error) {
      this.options.onTokenEvent("login_failed");
      // The message names the role_id setting, never its value: Vault treats a role_id as a credential.
      throw this.authError(error, `log in with AppRole at auth/${auth.mount}`, `check auth.role_id and the secret_id in local secret ${auth.secret_id_secret}`);
    }
  }

  private async lookupSelf(): Promise<TokenState> {
    const auth = this.options.auth;
    if (auth.method !== "token") {
      throw new Error("a token lookup needs token auth");
    }
    try {
      const response = await this.client.tokenLookupSelf();
      const data = response?.data as { accessor?: unknown; ttl?: unknown; renewable?: unknown; creation_ttl?: unknown } | undefined;
      const ttl = typeof data?.ttl === "number" ? data.ttl : 0;
      this.options.onTokenEvent("lookup");
      const state: TokenState = {
        accessor: typeof data?.accessor === "string" ? data.accessor : "unknown",
        expiresAt: ttl > 0 ? new Date(this.options.now().getTime() + ttl * 1000) : null,
        ttlSeconds: typeof data?.creation_ttl === "number" && data.creation_ttl > 0 ? data.creation_ttl : ttl,
        renewable: data?.renewable === true,
      };
      this.options.logger?.info({ accessor: state.accessor, ttl, address: this.options.connection.address }, "looked up the broker's Vault token");
      return state;
    } catch (error) {
      throw this.authError(error, "look up the broker's token", `check that local secret ${auth.token_secret} contains a valid, unexpired Vault token`);
    }
  }

  /** Renews the token; returns false when Vault refuses, so that the caller logs in again. */
  private async renewSelf(token: TokenState): Promise<boolean> {
    try {
      const response = await this.client.tokenRenewSelf({ increment: token.ttlSeconds });
      this.#token = { ...this.tokenFromAuth(response?.auth), ttlSeconds: token.ttlSeconds };
      this.options.onTokenEvent("renew");
      this.options.logger?.info({ accessor: token.accessor, granted: this.#token.expiresAt }, "renewed the broker's Vault token");
      return true;
    } catch (error) {
      const status = vaultStatus(error);
      if (status === undefined || !RENEWAL_REFUSED_STATUSES.has(status)) {
        throw toAdapterError(error, { location: this.options.connection.address, action: "renew the broker's token" });
      }
      this.options.onTokenEvent("renew_refused");
      this.options.logger?.warn({ accessor: token.accessor, status }, "Vault refused to renew the broker's token");
      return false;
    }
  }

  private tokenFromAuth(auth: { accessor?: unknown; lease_duration?: unknown; renewable?: unknown } | undefined): TokenState {
    const ttl = typeof auth?.lease_duration === "number" ? auth.lease_duration : 0;
    return {
      accessor: typeof auth?.accessor === "string" ? auth.accessor : "unknown",
      expiresAt: ttl > 0 ? new Date(this.options.now().getTime() + ttl * 1000) : null,
      ttlSeconds: ttl,
      renewable: auth?.renewable === true,
    };
  }

  /** Maps a failed login or lookup: Vault's 400 and 403 mean the credential is wrong, and `fix` names what to check. */
  private authError(error: unknown, action: string, fix: string): unknown {
    const status = vaultStatus(error);
    if (status === 400 || status === 403) {
      return new UpstreamRejected(`Vault rejected the request to ${action} at ${this.options.connection.address} (${status}); ${fix}`, { cause: safeCause(error) });
    }
    return toAdapterError(error, { location: this.options.connection.address, action });
  }
}
