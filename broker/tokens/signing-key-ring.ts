import { importJWK, type JWK } from "jose";
import { asc } from "drizzle-orm";
import type { Clock } from "../config/clock.js";
import { nameRecordInEnvelopeError } from "../crypto/envelope.js";
import type { MasterKeyRing } from "../crypto/master-key-ring.js";
import { createSigningKey, type SigningAlgorithm, signingKeySealContext } from "../crypto/signing-keys.js";
import type { Db, Executor } from "../db/database.js";
import { signingKeys } from "../db/schema.js";

type SigningKeyRow = typeof signingKeys.$inferSelect;
export type SigningPrivateKey = Awaited<ReturnType<typeof importJWK>>;

/** How long the key ring trusts its copy of the signing_keys table, in milliseconds. */
const KEY_RING_REFRESH_MS = 30_000;

/** Stage of a signing key: published before it signs, signing, then superseded by a newer key. */
export type SigningKeyState = "pending" | "active" | "retired";

/** A signing key's public facts and its state at one moment; never its private key. */
export interface SigningKeyStatus {
  kid: string;
  alg: string;
  createdAt: Date;
  activatesAt: Date;
  state: SigningKeyState;
  /** When a retired key leaves the JWKS; null for pending and active keys. */
  publishedUntil: Date | null;
  publicJwk: JWK;
}

/** The key that signs new tokens: its `kid`, algorithm and private key. */
export interface ActiveSigningKey {
  kid: string;
  alg: string;
  privateKey: SigningPrivateKey;
}

/**
 * The broker's signing keys, read from the database and cached briefly so that every
 * replica sees a rotation within `KEY_RING_REFRESH_MS`. A key is published in the JWKS
 * from its creation, signs from `activates_at` until a newer key activates, and stays
 * published for `retentionSeconds` after that, so that every token it signed can
 * still be verified until it expires.
 */
export class SigningKeyRing {
  private rows: SigningKeyRow[] = [];
  private loadedAt = Number.NEGATIVE_INFINITY;
  private readonly privateKeys = new Map<string, Promise<SigningPrivateKey>>();
  private readonly publicKeys = new Map<string, Promise<SigningPrivateKey>>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly masterKeys: MasterKeyRing,
    private readonly retentionSeconds: number,
  ) {}

  /** Stores a new key sealed under the current master key; it signs from `activatesAt`. */
  async addKey(tx: Executor, alg: SigningAlgorithm, activatesAt: Date): Promise<string> {
    const kid = await createSigningKey(tx, this.masterKeys, this.clock, alg, activatesAt);
    this.invalidate();
    return kid;
  }

  /** Forgets the cached rows, e.g. right after a rotation in this process. */
  invalidate(): void {
    this.loadedAt = Number.NEGATIVE_INFINITY;
  }

  async activeKey(): Promise<ActiveSigningKey> {
    const rows = await this.load();
    const now = this.clock.now().getTime();
    const active = rows.filter((row) => activation(row) <= now).at(-1);
    if (!active) {
      throw new Error("no signing key is active: run `secrets-broker init` or wait for the published key to activate");
    }
    let privateKey = this.privateKeys.get(active.kid);
    if (!privateKey) {
      privateKey = this.decrypt(active);
      this.privateKeys.set(active.kid, privateKey);
    }
    return { kid: active.kid, alg: active.alg, privateKey: await privateKey };
  }

  /** Public keys to publish now: pending, active, and retired ones whose tokens may still be live. */
  async publishedKeys(): Promise<JWK[]> {
    const now = this.clock.now().getTime();
    return (await this.keyStates())
      .filter((key) => key.publishedUntil === null || key.publishedUntil.getTime() > now)
      .map((key) => key.publicJwk);
  }

  /**
   * Lists every key with its state at the clock's time, in activation order. `fresh` reads
   * the table instead of the cached copy, so that a rotation on another replica shows at once.
   */
  async keyStates(options: { fresh?: boolean } = {}): Promise<SigningKeyStatus[]> {
    if (options.fresh) {
      this.invalidate();
    }
    const rows = await this.load();
    const now = this.clock.now().getTime();
    const activeIndex = rows.findLastIndex((row) => activation(row) <= now);
    return rows.map((row, index) => {
      const base = { kid: row.kid, alg: row.alg, createdAt: row.createdAt, activatesAt: new Date(activation(row)), publicJwk: row.publicJwk as JWK };
      if (index > activeIndex) {
        return { ...base, state: "pending", publishedUntil: null };
      }
      if (index === activeIndex) {
        return { ...base, state: "active", publishedUntil: null };
      }
      // A retired key stays published until every token it signed before its successor activated has expired.
      const successor = rows.slice(index + 1).find((later) => activation(later) <= now)!;
      return { ...base, state: "retired", publishedUntil: new Date(activation(successor) + this.retentionSeconds * 1000) };
    });
  }

  /** Public key for a `kid`, when that key is still published. */
  async publicKey(kid: string): Promise<JWK | undefined> {
    return (await this.publishedKeys()).find((jwk) => jwk.kid === kid);
  }

  /**
   * Returns the imported public key and algorithm for a `kid`, when that key is still published.
   * Imports are cached per `kid`, so that verifying the broker's own tokens does not
   * import the same key on every request.
   */
  async verificationKey(kid: string): Promise<{ key: SigningPrivateKey; alg: string } | undefined> {
    const jwk = await this.publicKey(kid);
    if (!jwk?.alg) {
      return undefined;
    }
    let key = this.publicKeys.get(kid);
    if (!key) {
      key = importJWK(jwk, jwk.alg);
      this.publicKeys.set(kid, key);
    }
    return { key: await key, alg: jwk.alg };
  }

  /** Algorithms of the published keys, for the metadata document. */
  async algorithms(): Promise<string[]> {
    return [...new Set((await this.load()).map((row) => row.alg))];
  }

  private async load(): Promise<SigningKeyRow[]> {
    // Real time, not the injected clock: the refresh bounds how stale this copy of the table
    // may be. Key states come from the injected clock on every call, so they need no reload.
    if (Date.now() - this.loadedAt < KEY_RING_REFRESH_MS) {
      return this.rows;
    }
    this.rows = await this.db.select().from(signingKeys).orderBy(asc(signingKeys.activatesAt), asc(signingKeys.createdAt));
    this.loadedAt = Date.now();
    return this.rows;
  }

  private async decrypt(row: SigningKeyRow): Promise<SigningPrivateKey> {
    let privateJwk: Buffer;
    try {
      privateJwk = this.masterKeys.open(row.privateKeyCiphertext, signingKeySealContext(row.kid));
    } catch (error) {
      throw nameRecordInEnvelopeError(error, `signing key ${row.kid}`);
    }
    const jwk = JSON.parse(privateJwk.toString("utf8")) as JWK;
    return importJWK(jwk, row.alg);
  }
}

function activation(row: SigningKeyRow): number {
  return (row.activatesAt ?? row.createdAt).getTime();
}
