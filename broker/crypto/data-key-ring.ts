import { hkdfSync, randomBytes } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { SealedValueRejected, type ValueSealer } from "../../adapters/local/value-sealer.js";
import { type AuditDeps, auditedTransaction } from "../audit/audit-writer.js";
import { SYSTEM_CONTEXT } from "../audit/audit-types.js";
import { dataKeys } from "../db/schema.js";
import type { Logger } from "../logging/logger.js";
import { AES_256_KEY_BYTES, nameRecordInEnvelopeError, openEnvelope, type ParsedEnvelope, parseEnvelope, sealEnvelope } from "./envelope.js";
import type { MasterKeyRing } from "./master-key-ring.js";

/** `value` keys seal the local adapter's values; the `fingerprint` key keys HMAC-SHA256 fingerprints. */
export type DataKeyPurpose = "value" | "fingerprint";

/** Length of `derivedSecret`'s output: a 256-bit seed. */
const DERIVED_SECRET_BYTES = 32;

/** Data key ids look like other broker ids: `dk_` and 24 hex characters. */
const DATA_KEY_ID_PREFIX = "dk";
const DATA_KEY_ID_RANDOM_BYTES = 12;

type DataKeyRow = typeof dataKeys.$inferSelect;

interface DataKey {
  id: string;
  purpose: DataKeyPurpose;
  key: Buffer;
}

export interface DataKeyRingOptions extends AuditDeps {
  masterKeys: MasterKeyRing;
  log: Logger;
}

/** Returns the context a data key is wrapped under, so that a wrapped key copied to another row fails to unwrap. */
export function dataKeyWrapContext(id: string, purpose: string): string {
  return `data-key:${id}:${purpose}`;
}

/**
 * AES-256 data keys stored in `data_keys`, each wrapped by a master key, unwrapped once
 * and kept in memory for the life of the process. The active key of a purpose is created
 * on first use. When two processes race to create it, the unique index on active keys
 * lets one insert win, and the other process reads the winner's key.
 *
 * NOTE: PGlite serves one transaction at a time. A call to `seal`, `open`,
 * `fingerprintKey` or `derivedSecret` made while the caller has a transaction open on
 * the same PGlite database waits forever when the key is not cached yet, so call them
 * outside transactions.
 */
export class DataKeyRing implements ValueSealer {
  private readonly keys = new Map<string, Promise<DataKey | undefined>>();
  private readonly activeKeys = new Map<DataKeyPurpose, Promise<DataKey>>();

  constructor(private readonly options: DataKeyRingOptions) {}

  async seal(plaintext: Buffer, context: string): Promise<string> {
    const key = await this.activeKey("value");
    return sealEnvelope(key.key, key.id, plaintext, context);
  }

  /**
   * Opens a value envelope. Throws `SealedValueRejected` when it is malformed, names no
   * value key, or fails its integrity check. A master key missing from the ring raises
   * the `EnvelopeError` of the master-key ring instead.
   */
  async open(envelope: string, context: string): Promise<Buffer> {
    const parsed = parseValueEnvelope(envelope);
    const key = await this.keyById(parsed.keyId);
    if (!key || key.purpose !== "value") {
      throw new SealedValueRejected("unknown_key", `sealed value names data key ${parsed.keyId}, which is not a value key in this database`);
    }
    try {
      return openEnvelope(key.key, parsed, context);
    } catch (error) {
      throw new SealedValueRejected("integrity_check_failed", `sealed value under data key ${key.id} failed its integrity check`, { cause: error });
    }
  }

  /**
   * Returns the key of HMAC-SHA256 fingerprints of secret values, creating it on first use.
   * Each call returns a copy, so that a caller that zeroes it leaves the cached key intact.
   */
  async fingerprintKey(): Promise<Buffer> {
    return Buffer.from((await this.activeKey("fingerprint")).key);
  }

  /**
   * Returns 32 bytes derived with HKDF-SHA256 from the active value key and `info`: the
   * same bytes for the same `info` while that key is active, unrelated bytes for another.
   * Anyone with the value key can recompute them, just as they can open every sealed value.
   */
  async derivedSecret(info: string): Promise<Buffer> {
    const key = await this.activeKey("value");
    return Buffer.from(hkdfSync("sha256", key.key, Buffer.alloc(0), `secrets-broker:${info}`, DERIVED_SECRET_BYTES));
  }

  /**
   * Unwraps every stored data key into memory and returns how many there are. Start-up
   * calls it so that a master key missing from the ring stops the broker at once instead
   * of failing the first request that needs the key.
   */
  async load(): Promise<number> {
    const rows = await this.options.db.select().from(dataKeys);
    for (const row of rows) {
      this.keys.set(row.id, Promise.resolve(this.unwrap(row)));
    }
    return rows.length;
  }

  private activeKey(purpose: DataKeyPurpose): Promise<DataKey> {
    let key = this.activeKeys.get(purpose);
    if (!key) {
      key = this.findOrCreateActive(purpose);
      this.activeKeys.set(purpose, key);
      // A failed lookup (database down) must not stick: the next call tries again.
      key.catch(() => this.activeKeys.delete(purpose));
    }
    return key;
  }

  private async findOrCreateActive(purpose: DataKeyPurpose): Promise<DataKey> {
    const existing = await this.findActive(purpose);
    if (existing) {
      return existing;
    }

    await this.createActive(purpose);
    // Either this insert won, or another process's did and this one did nothing: read the winner.
    const active = await this.findActive(purpose);
    if (!active) {
      throw new Error(`no active ${purpose} data key after creating one; check the data_keys table`);
    }
    return active;
  }

  private async findActive(purpose: DataKeyPurpose): Promise<DataKey | undefined> {
    const [row] = await this.options.db
      .select()
      .from(dataKeys)
      .where(and(eq(dataKeys.purpose, purpose), eq(dataKeys.status, "active")));
    if (!row) {
      return undefined;
    }
    const key = this.unwrap(row);
    this.keys.set(row.id, Promise.resolve(key));
    return key;
  }

  private async createActive(purpose: DataKeyPurpose): Promise<void> {
    const { masterKeys, clock, log } = this.options;
    const id = `${DATA_KEY_ID_PREFIX}_${randomBytes(DATA_KEY_ID_RANDOM_BYTES).toString("hex")}`;
    const wrappedKey = masterKeys.seal(randomBytes(AES_256_KEY_BYTES), dataKeyWrapContext(id, purpose));
    const masterKeyId = masterKeys.currentKeyId;

    const created = await auditedTransaction(this.options, SYSTEM_CONTEXT, async (tx, record) => {
      // The unique index on (purpose) where status = 'active' makes a concurrent second insert do nothing.
      const inserted = await tx
        .insert(dataKeys)
        .values({ id, purpose, wrappedKey, masterKeyId, status: "active", createdAt: clock.now() })
        .onConflictDoNothing()
        .returning({ id: dataKeys.id });
      if (inserted.length === 0) {
        return false;
      }
      record({ action: "data_key.create", target: id, details: { purpose, master_key_id: masterKeyId } });
      return true;
    });
    if (created) {
      log.info({ dataKeyId: id, purpose, masterKeyId }, "data key created");
    } else {
      log.info({ purpose }, "another process created the active data key first");
    }
  }

  private keyById(id: string): Promise<DataKey | undefined> {
    let key = this.keys.get(id);
    if (!key) {
      key = this.readKey(id);
      this.keys.set(id, key);
      // Only found keys stay cached: ids from altered envelopes must not fill the cache.
      key.then(
        (found) => {
          if (!found) {
            this.keys.delete(id);
          }
        },
        () => this.keys.delete(id),
      );
    }
    return key;
  }

  private async readKey(id: string): Promise<DataKey | undefined> {
    const [row] = await this.options.db.select().from(dataKeys).where(eq(dataKeys.id, id));
    return row ? this.unwrap(row) : undefined;
  }

  private unwrap(row: DataKeyRow): DataKey {
    const purpose = row.purpose as DataKeyPurpose;
    try {
      return { id: row.id, purpose, key: this.options.masterKeys.open(row.wrappedKey, dataKeyWrapContext(row.id, purpose)) };
    } catch (error) {
      throw nameRecordInEnvelopeError(error, `data key ${row.id}`);
    }
  }
}

/** Parses a value envelope, which always names its data key; malformed envelopes become `SealedValueRejected`. */
function parseValueEnvelope(envelope: string): ParsedEnvelope & { keyId: string } {
  let parsed: ParsedEnvelope;
  try {
    parsed = parseEnvelope(envelope);
  } catch (error) {
    throw new SealedValueRejected("malformed", "sealed value is malformed", { cause: error });
  }
  if (parsed.keyId === null) {
    throw new SealedValueRejected("malformed", "sealed value names no data key");
  }
  return { ...parsed, keyId: parsed.keyId };
}
