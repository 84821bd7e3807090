import { createHmac } from "node:crypto";
import { EnvelopeError, openEnvelope, type ParsedEnvelope, parseEnvelope, sealEnvelope } from "./envelope.js";

/** HMAC message that derives a key's id; changing it changes every id. */
const KEY_ID_LABEL = "secrets-broker master key id";
/** Hex characters of the HMAC kept as the key id: 64 bits, enough to tell a handful of keys apart. */
const KEY_ID_HEX_CHARS = 16;

/** Origin of the master keys: `BROKER_MASTER_KEY`, or the key file in the data directory. */
export type MasterKeySource = "environment" | "file";

interface MasterKeyEntry {
  id: string;
  key: Buffer;
}

/**
 * Returns the id of a master key: the first 16 hex characters of
 * HMAC-SHA256(key, "secrets-broker master key id"). The id is one-way and safe to log,
 * store and show; it cannot be turned back into the key.
 */
export function masterKeyId(key: Buffer): string {
  return createHmac("sha256", key).update(KEY_ID_LABEL).digest("hex").slice(0, KEY_ID_HEX_CHARS);
}

/**
 * The master keys of this process. The first key is current and seals everything new.
 * The others are older keys, kept only to open what they sealed until a rotation has
 * re-wrapped it. Envelopes name the key that sealed them (`v2.<key id>...`), so `open`
 * picks the key by id. A `v1` envelope, written before key ids existed, is tried against
 * each key in order.
 */
export class MasterKeyRing {
  private entries: MasterKeyEntry[];

  constructor(
    keys: Buffer[],
    readonly source: MasterKeySource,
    /** The key file, when `source` is `file`. */
    readonly file?: string,
    /** True when this process generated the key file on start-up. */
    readonly created = false,
  ) {
    if (keys.length === 0) {
      throw new Error("a master-key ring needs at least one key");
    }
    this.entries = keys.map((key) => ({ id: masterKeyId(key), key }));
  }

  /** The id of the key that seals new values. */
  get currentKeyId(): string {
    return this.entries[0]!.id;
  }

  /** Ids of every key this process loaded, current first. */
  get keyIds(): string[] {
    return this.entries.map((entry) => entry.id);
  }

  /** Names the origin of the keys for messages: the variable or the file, never a key. */
  get origin(): string {
    return this.source === "environment" ? "BROKER_MASTER_KEY" : `the master key file ${this.file}`;
  }

  has(keyId: string): boolean {
    return this.entries.some((entry) => entry.id === keyId);
  }

  /** Seals under the current key; `context` is bound as additional authenticated data. */
  seal(plaintext: Buffer, context: string): string {
    const current = this.entries[0]!;
    return sealEnvelope(current.key, current.id, plaintext, context);
  }

  /** Opens what `seal` produced, or a `v1` envelope; throws `EnvelopeError` naming the key id when it cannot. */
  open(envelope: string, context: string): Buffer {
    return this.openWithKeyId(envelope, context).plaintext;
  }

  /** Opens an envelope and returns which key opened it, so that a re-wrap can report where a value came from. */
  openWithKeyId(envelope: string, context: string): { plaintext: Buffer; keyId: string } {
    const parsed = parseEnvelope(envelope);
    if (parsed.keyId === null) {
      return this.openLegacy(parsed, context);
    }

    const entry = this.entries.find((candidate) => candidate.id === parsed.keyId);
    if (!entry) {
      throw new EnvelopeError(
        "unknown_key",
        `sealed with master key ${parsed.keyId}, which ${this.origin} does not contain (it contains ${this.keyIds.join(", ")}); ` +
          "add that key after the current one, restart, and run `secrets-broker master-key rotate`",
        parsed.keyId,
      );
    }
    return { plaintext: openEnvelope(entry.key, parsed, context), keyId: entry.id };
  }

  /**
   * Returns the id of the key an envelope names, without opening it; null for a `v1`
   * envelope, which names none. Throws `EnvelopeError` for a malformed envelope.
   */
  keyIdOf(envelope: string): string | null {
    return parseEnvelope(envelope).keyId;
  }

  /**
   * Makes `key` current and keeps every key already loaded for opening, so that values
   * read before a re-wrap committed can still be opened by this process until it restarts.
   */
  promote(key: Buffer): void {
    const id = masterKeyId(key);
    this.entries = [{ id, key }, ...this.entries.filter((entry) => entry.id !== id)];
  }

  /** Returns the keys with these ids as base64 text, for writing the key file only. */
  exportForKeyFile(keyIds: string[]): string[] {
    return keyIds.map((keyId) => {
      const entry = this.entries.find((candidate) => candidate.id === keyId);
      if (!entry) {
        throw new Error(`master key ${keyId} is not loaded in this process`);
      }
      return entry.key.toString("base64");
    });
  }

  private openLegacy(parsed: ParsedEnvelope, context: string): { plaintext: Buffer; keyId: string } {
    for (const entry of this.entries) {
      try {
        return { plaintext: openEnvelope(entry.key, parsed, context), keyId: entry.id };
      } catch (error) {
        if (!(error instanceof EnvelopeError)) {
          throw error;
        }
      }
    }
    throw new EnvelopeError(
      "integrity_check_failed",
      `sealed value (a v1 envelope, which names no key) opens with none of the keys in ${this.origin} (${this.keyIds.join(", ")})`,
    );
  }
}
