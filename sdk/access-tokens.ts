import type { TokenResponse } from "./broker-api.js";
import type { Clock } from "./clock.js";
import { SecretsBrokerError } from "./errors.js";

/** The target of an access token: the broker itself when `audience` is absent. */
export interface AccessTokenRequest {
  /** The resource server the token is for; absent for the broker's own API (credentials, leases). */
  audience?: string;
  /** Scopes, as a space-separated string or a list. */
  scope?: string | string[];
}

/** An access token the SDK holds, with what it needs to decide when to refresh it. */
export interface AccessToken {
  accessToken: string;
  tokenType: string;
  /** When the token expires, from the SDK's clock at the time it asked for the token. */
  expiresAt: Date;
  scope: string;
  audience: string | null;
  /** The broker lease behind the token; revoking it ends the token and its credentials. */
  leaseId: string | null;
}

interface CachedToken {
  token: AccessToken;
  refreshAt: number;
  expiresAt: number;
}

export interface AccessTokenSettings {
  clock: Clock;
  /** Fraction of a token's lifetime after which it is refreshed. */
  refreshRatio: number;
  /** Hand out an unexpired token when its refresh fails because the broker is down. */
  serveStale: boolean;
  fetchToken(target: { audience: string | undefined; scope: string }): Promise<TokenResponse>;
}

/**
 * Access tokens per audience and scope. A cached token is returned until `refreshRatio`
 * of its lifetime has passed; then one request refreshes it, shared by every concurrent
 * caller. A token is never returned at or after its expiry.
 */
export class AccessTokenCache {
  private readonly entries = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<AccessToken>>();

  constructor(private readonly settings: AccessTokenSettings) {}

  get(request: AccessTokenRequest = {}): Promise<AccessToken> {
    const key = cacheKey(request.audience, request.scope);
    const entry = this.entries.get(key);
    if (entry !== undefined && this.settings.clock.now() < entry.refreshAt) {
      return Promise.resolve(entry.token);
    }
    return this.refresh(key, request.audience, normalizeScope(request.scope), entry);
  }

  /** Forgets a token the broker refused (revoked, or superseded), so that the next call gets a new one. */
  discard(accessToken: string): void {
    for (const [key, entry] of this.entries) {
      if (entry.token.accessToken === accessToken) this.entries.delete(key);
    }
  }

  /** Returns the unexpired tokens in the cache, whose leases close() revokes. */
  liveTokens(): AccessToken[] {
    const now = this.settings.clock.now();
    return [...this.entries.values()].filter((entry) => now < entry.expiresAt).map((entry) => entry.token);
  }

  clear(): void {
    this.entries.clear();
  }

  private async refresh(key: string, audience: string | undefined, scope: string, stale: CachedToken | undefined): Promise<AccessToken> {
    let flight = this.inflight.get(key);
    if (flight === undefined) {
      flight = this.load(key, audience, scope).finally(() => this.inflight.delete(key));
      this.inflight.set(key, flight);
    }
    try {
      return await flight;
    } catch (error) {
      if (this.settings.serveStale && stale !== undefined && error instanceof SecretsBrokerError && error.retryable && this.settings.clock.now() < stale.expiresAt) {
        return stale.token;
      }
      throw error;
    }
  }

  private async load(key: string, audience: string | undefined, scope: string): Promise<AccessToken> {
    const requestedAt = this.settings.clock.now();
    const response = await this.settings.fetchToken({ audience, scope });
    // Times count from the request, so that the SDK's view of expiry is never later than the broker's.
    const lifetimeMs = response.expiresIn * 1000;
    const token: AccessToken = {
      accessToken: response.accessToken,
      tokenType: response.tokenType,
      expiresAt: new Date(requestedAt + lifetimeMs),
      scope: response.scope,
      audience: audience ?? null,
      leaseId: response.leaseId,
    };
    this.entries.set(key, { token, refreshAt: requestedAt + lifetimeMs * this.settings.refreshRatio, expiresAt: requestedAt + lifetimeMs });
    return token;
  }
}

/** Scopes in a canonical order, so that "b a" and ["a", "b"] share a cache entry. */
export function normalizeScope(scope: string | string[] | undefined): string {
  if (scope === undefined) return "";
  const items = (typeof scope === "string" ? scope.split(/\s+/) : scope).filter((item) => item !== "");
  return [...new Set(items)].sort().join(" ");
}

function cacheKey(audience: string | undefined, scope: string | string[] | undefined): string {
  const scopeKey = typeof scope === "string" && !/\s/.test(scope) ? scope : normalizeScope(scope);
  return `${audience ?? ""}\n${scopeKey}`;
}
