import { createLocalJWKSet, errors, type JSONWebKeySet, type JWK, type JWSHeaderParameters, type FlattenedJWSInput } from "jose";

/** Remote JWKS caching, matching jose's and jwks-rsa's defaults: 10 minutes, refetch on unknown kid at most every 30 s. */
export const JWKS_CACHE_MAX_AGE_MS = 10 * 60 * 1000;
export const JWKS_COOLDOWN_MS = 30 * 1000;
export const JWKS_TIMEOUT_MS = 5000;
/** Largest JWKS document read, in bytes. */
const MAX_JWKS_BYTES = 256 * 1024;

type KeyResolver = ReturnType<typeof createLocalJWKSet>;

/**
 * Makes a trusted issuer's keys usable by jose. SPIRE publishes JWT-SVID keys with
 * `use: "jwt-svid"` and often without `alg` (SPIFFE JWT-SVID specification, section
 * 3); jose would skip such keys, so `use` is dropped and the algorithm is then
 * inferred from the key type, within the broker's allow-list.
 */
export function normalizeIssuerKeys(keys: readonly JWK[]): JSONWebKeySet {
  return {
    keys: keys.map((key) => {
      if (key.use !== "jwt-svid") {
        return key;
      }
      const { use: _use, ...rest } = key;
      return rest;
    }),
  };
}

/** Key resolver for an inline JWKS. */
export function localKeySet(keys: readonly JWK[]): KeyResolver {
  return createLocalJWKSet(normalizeIssuerKeys(keys));
}

/**
 * A remote JWKS kept for `JWKS_CACHE_MAX_AGE_MS`, fetched again when a token names an
 * unknown `kid` but at most once per `JWKS_COOLDOWN_MS`, with a fetch timeout.
 * Concurrent callers share one fetch.
 */
export class RemoteKeySet {
  private resolver: KeyResolver | undefined;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<void> | undefined;

  constructor(private readonly uri: URL) {}

  readonly resolve = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    if (!this.resolver || Date.now() - this.fetchedAt > JWKS_CACHE_MAX_AGE_MS) {
      await this.reload();
    }
    try {
      return await this.resolver!(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey) || Date.now() - this.fetchedAt < JWKS_COOLDOWN_MS) {
        throw error;
      }
      await this.reload();
      return this.resolver!(header, token);
    }
  };

  private reload(): Promise<void> {
    this.pending ??= this.fetchKeys().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async fetchKeys(): Promise<void> {
    let response: Response;
    try {
      response = await fetch(this.uri, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(JWKS_TIMEOUT_MS) });
    } catch (error) {
      if ((error as Error).name === "TimeoutError") {
        throw new errors.JWKSTimeout(`JWKS at ${this.uri} timed out after ${JWKS_TIMEOUT_MS} ms`);
      }
      throw new errors.JOSEError(`JWKS at ${this.uri} could not be fetched`);
    }
    const text = await response.text();
    if (!response.ok || text.length > MAX_JWKS_BYTES) {
      throw new errors.JOSEError(`JWKS at ${this.uri} returned ${response.status}${text.length > MAX_JWKS_BYTES ? " with a document too large" : ""}`);
    }
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      throw new errors.JWKSInvalid(`JWKS at ${this.uri} is not JSON`);
    }
    const keys = (document as { keys?: unknown }).keys;
    if (!Array.isArray(keys)) {
      throw new errors.JWKSInvalid(`JWKS at ${this.uri} has no keys array`);
    }
    this.resolver = localKeySet(keys as JWK[]);
    this.fetchedAt = Date.now();
  }
}
