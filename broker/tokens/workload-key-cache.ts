import { importJWK, type JWK } from "jose";

type VerificationKey = Awaited<ReturnType<typeof importJWK>>;

/** Imported keys kept per process; past this many the oldest entry is dropped. */
const MAX_CACHED_KEYS = 1000;

/** A registered workload key as the token endpoint reads it from `workload_keys`. */
export interface WorkloadKeyRecord {
  id: string;
  jwk: Record<string, unknown>;
}

interface CachedKey {
  /** The JWK the key was imported from, serialized, so that a changed row never reuses it. */
  jwkText: string;
  key: Promise<VerificationKey>;
}

/**
 * Imported public keys of workloads, by key row id and algorithm. The cache only saves the
 * import: callers read the key row from the database on every request, so a removed key is
 * rejected at once on every replica, and a row whose JWK changed is imported again.
 */
export class WorkloadKeyCache {
  private readonly entries = new Map<string, CachedKey>();

  /** Returns the key of `record` imported for `alg`, importing it on first use. */
  verificationKey(record: WorkloadKeyRecord, alg: string): Promise<VerificationKey> {
    const cacheKey = `${record.id}\n${alg}`;
    const jwkText = JSON.stringify(record.jwk);
    const cached = this.entries.get(cacheKey);
    if (cached && cached.jwkText === jwkText) {
      return cached.key;
    }

    const key = importJWK(record.jwk as JWK, alg);
    // A key that failed to import is not kept, so the next request tries again.
    key.catch(() => {
      if (this.entries.get(cacheKey)?.key === key) {
        this.entries.delete(cacheKey);
      }
    });
    this.entries.delete(cacheKey);
    this.entries.set(cacheKey, { jwkText, key });
    if (this.entries.size > MAX_CACHED_KEYS) {
      this.entries.delete(this.entries.keys().next().value!);
    }
    return key;
  }
}
