import { type AccessToken, AccessTokenCache, type AccessTokenRequest, normalizeScope } from "./access-tokens.js";
import { issueCredential, renewLease, requestToken, revokeLease } from "./broker-api.js";
import { type Clock, systemClock } from "./clock.js";
import { type ChangeListener, type Credential, CredentialHolder, type ErrorListener, type LeaseCalls } from "./credential-holder.js";
import { type BrokerMetadata, discoverBroker } from "./discovery.js";
import { BrokerProblemError, ClientClosed, InvalidConfiguration } from "./errors.js";
import type { Identity } from "./identity.js";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "./retry.js";
import type { DebugSink, Transport } from "./transport.js";

export interface ClientOptions {
  /** The broker's base URL, e.g. `https://broker.internal:8200`. */
  broker: string;
  /** The workload identity proof: `privateKeyJwt(...)` or `federatedToken(...)`. */
  identity: Identity;
  /** Fraction of a token's or lease's lifetime after which it is refreshed; default 2/3. */
  refreshRatio?: number;
  /** Keep handing out an unexpired access token or credential while the broker is down; default false. */
  staleWhileBrokerDown?: boolean;
  /** Retries of failed requests (network errors, 5xx, 429). */
  retry?: Partial<RetryPolicy>;
  /** Time allowed for one request attempt; default 10 s. */
  requestTimeoutMs?: number;
  /** How long a superseded credential lease stays live before the SDK revokes it; default 30 s. */
  retireGraceMs?: number;
  /** Receives debug events (ids and counts, never tokens or values). */
  debug?: DebugSink;
  /** Time source; tests inject a manual clock. */
  clock?: Clock;
  /** The fetch implementation; the global fetch by default. */
  fetch?: typeof fetch;
}

export interface CredentialOptions {
  /** Lease duration in seconds to ask for at issue and at each renewal; the secret's default TTL otherwise. */
  ttl?: number;
  /** Scopes the access token needs for the secret's grant. */
  scope?: string | string[];
}

export interface WatchOptions extends CredentialOptions {
  /** Called when a refresh fails; the SDK keeps retrying with backoff. */
  onError?: ErrorListener;
}

const DEFAULT_REFRESH_RATIO = 2 / 3;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_RETIRE_GRACE_MS = 30_000;
/** Background refreshes that failed retry from 1 s, doubling up to one minute. */
const BACKGROUND_RETRY: RetryPolicy = { maxAttempts: Infinity, baseDelayMs: 1_000, maxDelayMs: 60_000, maxRetryAfterMs: 60_000 };
const RELEASE_REASON = "released by the client";

/**
 * The secrets-broker client: access tokens for the workload's identity, and leased
 * credentials that stay valid while the application holds them.
 */
export class SecretsBrokerClient {
  private readonly brokerUrl: string;
  private readonly transport: Transport;
  private readonly tokens: AccessTokenCache;
  private readonly holders = new Map<string, CredentialHolder>();
  private readonly holderScopes = new WeakMap<CredentialHolder, string>();
  /** Aborted by close(): ends requests and retry waits still in flight. */
  private readonly closing = new AbortController();
  private readonly options: Required<Pick<ClientOptions, "refreshRatio" | "staleWhileBrokerDown" | "retireGraceMs">>;
  private readonly identity: Identity;
  private metadata: Promise<BrokerMetadata> | undefined;
  private closed = false;

  constructor(options: ClientOptions) {
    this.brokerUrl = brokerUrl(options.broker);
    if (!options.identity || typeof options.identity.tokenRequest !== "function") {
      throw new InvalidConfiguration("identity is required: privateKeyJwt({ clientId, key }) or federatedToken({ tokenFile })");
    }
    const refreshRatio = options.refreshRatio ?? DEFAULT_REFRESH_RATIO;
    if (!(refreshRatio > 0 && refreshRatio < 1)) {
      throw new InvalidConfiguration("refreshRatio must be a number between 0 and 1, such as 2/3");
    }
    this.options = { refreshRatio, staleWhileBrokerDown: options.staleWhileBrokerDown ?? false, retireGraceMs: options.retireGraceMs ?? DEFAULT_RETIRE_GRACE_MS };
    this.transport = {
      fetch: options.fetch ?? globalThis.fetch,
      clock: options.clock ?? systemClock,
      retry: { ...DEFAULT_RETRY_POLICY, ...options.retry },
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      debug: options.debug ?? (() => undefined),
      signal: this.closing.signal,
    };
    this.identity = options.identity;
    const identity = options.identity;
    this.tokens = new AccessTokenCache({
      clock: this.transport.clock,
      refreshRatio,
      serveStale: this.options.staleWhileBrokerDown,
      fetchToken: async (target) => {
        const response = await requestToken(this.transport, await this.discover(), identity, target);
        this.transport.debug("token.issued", { lease_id: response.leaseId, audience: target.audience ?? null, expires_in: response.expiresIn });
        return response;
      },
    });
  }

  /** Returns an access token for `audience` and `scope`, from the cache while it is fresh. */
  getAccessToken(request: AccessTokenRequest = {}): Promise<AccessToken> {
    if (this.closed) return Promise.reject(new ClientClosed());
    return this.tokens.get(request);
  }

  /** Returns the credential for `secret`, issued on first use and renewed until released. */
  getCredential(secret: string, options: CredentialOptions = {}): Promise<Credential> {
    if (this.closed) return Promise.reject(new ClientClosed());
    return this.holder(secret, options).get();
  }

  /** Calls `onChange` with the credential for `secret`, then with each new value (rotation, re-issue). Returns a function that stops watching. */
  watch(secret: string, onChange: ChangeListener, options: WatchOptions = {}): () => void {
    if (this.closed) throw new ClientClosed();
    return this.holder(secret, options).watch(onChange, options.onError);
  }

  /** Forgets the held credential for `secret` (the upstream rejected it); the next call issues a new one. */
  invalidate(secret: string): void {
    this.holders.get(secret)?.invalidate();
  }

  /** Stops renewing `secret` and revokes its leases. */
  async release(secret: string): Promise<void> {
    const holder = this.holders.get(secret);
    if (holder === undefined) return;
    this.holders.delete(secret);
    await holder.settle();
    const leaseIds = holder.stop();
    const calls = this.leaseCalls(this.holderScopes.get(holder) ?? "");
    await Promise.allSettled(leaseIds.map((leaseId) => calls.revoke(leaseId)));
  }

  /**
   * Stops every timer, request and retry, then revokes every lease the client holds:
   * credentials first, then its access tokens, whatever their audience. Resolves with how
   * many leases were revoked and how many could not be (those end at their expiry).
   */
  async close(): Promise<{ revoked: number; failed: number }> {
    if (this.closed) return { revoked: 0, failed: 0 };
    this.closed = true;
    this.closing.abort();
    const holders = [...this.holders.values()];
    this.holders.clear();
    await Promise.all(holders.map((holder) => holder.settle()));
    const credentialLeases = holders.flatMap((holder) => holder.stop());
    const tokens = this.tokens.liveTokens();
    this.tokens.clear();
    const bearer = tokens.find((token) => token.audience === null);
    // The token that authorizes the revocations is revoked last, because revoking it ends it.
    const tokenLeases = tokens
      .filter((token) => token !== bearer)
      .map((token) => token.leaseId)
      .concat(bearer?.leaseId ?? null)
      .filter((leaseId): leaseId is string => leaseId !== null);

    const result = await this.revokeAtClose(credentialLeases, tokenLeases, bearer?.accessToken);
    this.transport.debug("client.closed", { ...result });
    return result;
  }

  /**
   * Revokes leases after close, on requests that the close does not abort. A token for
   * the broker's audience authorizes them; without one held, one is requested for the
   * purpose and revoked last.
   */
  private async revokeAtClose(credentialLeases: string[], tokenLeases: string[], brokerToken: string | undefined): Promise<{ revoked: number; failed: number }> {
    const leaseIds = [...credentialLeases, ...tokenLeases];
    if (leaseIds.length === 0) return { revoked: 0, failed: 0 };
    const transport = { ...this.transport, signal: undefined };
    let bearer = brokerToken;
    if (bearer === undefined) {
      try {
        const issued = await requestToken(transport, await this.discover(), this.identity, { audience: undefined, scope: "" });
        bearer = issued.accessToken;
        if (issued.leaseId) leaseIds.push(issued.leaseId);
      } catch {
        return { revoked: 0, failed: leaseIds.length };
      }
    }
    let failed = 0;
    for (const leaseId of leaseIds) {
      await revokeLease(transport, this.brokerUrl, bearer, leaseId, RELEASE_REASON).catch(() => (failed += 1));
    }
    return { revoked: leaseIds.length - failed, failed };
  }

  private discover(): Promise<BrokerMetadata> {
    this.metadata ??= discoverBroker(this.transport, this.brokerUrl).catch((error: unknown) => {
      this.metadata = undefined;
      throw error;
    });
    return this.metadata;
  }

  private holder(secret: string, options: CredentialOptions): CredentialHolder {
    if (typeof secret !== "string" || secret === "") {
      throw new InvalidConfiguration("secret is required: the secret's name, such as payments/api-key");
    }
    let holder = this.holders.get(secret);
    if (holder === undefined) {
      const scope = normalizeScope(options.scope);
      holder = new CredentialHolder(secret, this.leaseCalls(scope), {
        clock: this.transport.clock,
        refreshRatio: this.options.refreshRatio,
        serveStale: this.options.staleWhileBrokerDown,
        ttl: options.ttl,
        retireGraceMs: this.options.retireGraceMs,
        backgroundRetry: BACKGROUND_RETRY,
        debug: this.transport.debug,
      });
      this.holders.set(secret, holder);
      this.holderScopes.set(holder, scope);
    }
    return holder;
  }

  /** Binds the lease calls of one holder to an access token for the broker with `scope`. */
  private leaseCalls(scope: string): LeaseCalls {
    const url = this.brokerUrl;
    const transport = this.transport;
    return {
      issue: (secret, ttl) => this.withAccessToken(scope, (token) => issueCredential(transport, url, token, secret, ttl)),
      renew: (leaseId, increment) => this.withAccessToken(scope, (token) => renewLease(transport, url, token, leaseId, increment)),
      revoke: (leaseId) => this.withAccessToken(scope, (token) => revokeLease(transport, url, token, leaseId, RELEASE_REASON)),
    };
  }

  /** Runs `call` with an access token; a token the broker no longer accepts (401) is replaced once. */
  private async withAccessToken<T>(scope: string, call: (accessToken: string) => Promise<T>): Promise<T> {
    const token = await this.tokens.get({ scope });
    try {
      return await call(token.accessToken);
    } catch (error) {
      if (!(error instanceof BrokerProblemError) || error.status !== 401) throw error;
      this.transport.debug("token.refused", { lease_id: token.leaseId });
      this.tokens.discard(token.accessToken);
      return call((await this.tokens.get({ scope })).accessToken);
    }
  }
}

/** Creates a client; see `ClientOptions`. */
export function createClient(options: ClientOptions): SecretsBrokerClient {
  return new SecretsBrokerClient(options);
}

function brokerUrl(value: unknown): string {
  if (typeof value !== "string") {
    throw new InvalidConfiguration("broker is required: the broker's base URL, such as http://127.0.0.1:8200");
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidConfiguration("broker must be an absolute http or https URL, such as http://127.0.0.1:8200");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidConfiguration("broker must be an http or https URL");
  }
  if (url.username !== "" || url.password !== "") {
    throw new InvalidConfiguration("broker must not carry credentials in the URL");
  }
  return url.href.replace(/\/+$/, "");
}
