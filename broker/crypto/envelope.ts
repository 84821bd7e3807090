import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/** AES-256 key length in bytes. */
export const AES_256_KEY_BYTES = 32;
/** GCM nonce length recommended by NIST SP 800-38D. */
const GCM_IV_BYTES = 12;
/** Full-length GCM tag; shorter tags, which GCM allows, are rejected on open. */
const GCM_TAG_BYTES = 16;
const CIPHER = "aes-256-gcm";
/** Envelopes before key ids: `v1.<iv>.<tag>.<ciphertext>`, sealed under the only master key. */
const LEGACY_VERSION = "v1";
/** `v2.<key id>.<iv>.<tag>.<ciphertext>`: the key id names the key that opens it. */
const KEYED_VERSION = "v2";
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]*$/;

export type EnvelopeErrorCode = "malformed_envelope" | "unknown_key" | "integrity_check_failed";

/**
 * A sealed value that cannot be opened. Messages name key ids and record ids, which are
 * not secret, and never contain key material, plaintext or ciphertext.
 */
export class EnvelopeError extends Error {
  override name = "EnvelopeError";

  constructor(
    readonly code: EnvelopeErrorCode,
    message: string,
    /** The key the envelope names, when it names one. */
    readonly keyId: string | null = null,
  ) {
    super(message);
  }
}

/** Returns an `EnvelopeError` with the record it belongs to before its message; other errors unchanged. */
export function nameRecordInEnvelopeError(error: unknown, record: string): unknown {
  if (!(error instanceof EnvelopeError)) {
    return error;
  }
  return new EnvelopeError(error.code, `${record}: ${error.message}`, error.keyId);
}

/** The parts of an envelope, decoded; `keyId` is null for a `v1` envelope. */
export interface ParsedEnvelope {
  keyId: string | null;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

/**
 * Encrypts with AES-256-GCM into `v2.<keyId>.<iv>.<tag>.<ciphertext>` (base64url parts).
 * `context` is bound as additional authenticated data, so a ciphertext moved to another
 * record fails to open.
 */
export function sealEnvelope(key: Buffer, keyId: string, plaintext: Buffer, context: string): string {
  if (!KEY_ID_PATTERN.test(keyId)) {
    throw new Error(`key id '${keyId}' cannot appear in an envelope: use letters, digits, '_' and '-'`);
  }
  const iv = randomBytes(GCM_IV_BYTES);
  const cipher = createCipheriv(CIPHER, key, iv, { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(Buffer.from(context, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [KEYED_VERSION, keyId, iv.toString("base64url"), tag.toString("base64url"), ciphertext.toString("base64url")].join(".");
}

/** Returns the text that every envelope sealed by `keyId` starts with, for finding them in SQL with LIKE. */
export function keyedEnvelopePrefix(keyId: string): string {
  return `${KEYED_VERSION}.${keyId}.`;
}

/**
 * Splits and decodes an envelope without opening it. Throws `EnvelopeError` with code
 * `malformed_envelope` for an unknown version, a wrong part count, non-canonical base64url
 * or a nonce or tag of the wrong length.
 */
export function parseEnvelope(envelope: string): ParsedEnvelope {
  const parts = envelope.split(".");
  const [version] = parts;
  if (version === KEYED_VERSION && parts.length === 5) {
    const keyId = parts[1]!;
    if (!KEY_ID_PATTERN.test(keyId)) {
      throw new EnvelopeError("malformed_envelope", "sealed value names an invalid key id");
    }
    return { keyId, ...decodeCipherParts(parts[2]!, parts[3]!, parts[4]!) };
  }
  if (version === LEGACY_VERSION && parts.length === 4) {
    return { keyId: null, ...decodeCipherParts(parts[1]!, parts[2]!, parts[3]!) };
  }
  throw new EnvelopeError("malformed_envelope", "sealed value has an unknown format: expected v1 or v2 envelope parts separated by '.'");
}

/** Decrypts a parsed envelope; throws `EnvelopeError` (`integrity_check_failed`) when the key, the context or any byte differs. */
export function openEnvelope(key: Buffer, envelope: ParsedEnvelope, context: string): Buffer {
  try {
    const decipher = createDecipheriv(CIPHER, key, envelope.iv, { authTagLength: GCM_TAG_BYTES });
    decipher.setAAD(Buffer.from(context, "utf8"));
    decipher.setAuthTag(envelope.tag);
    return Buffer.concat([decipher.update(envelope.ciphertext), decipher.final()]);
  } catch {
    throw new EnvelopeError("integrity_check_failed", "sealed value failed its integrity check", envelope.keyId);
  }
}

function decodeCipherParts(iv: string, tag: string, ciphertext: string): Omit<ParsedEnvelope, "keyId"> {
  const decoded = { iv: decodeBase64url(iv), tag: decodeBase64url(tag), ciphertext: decodeBase64url(ciphertext) };
  if (decoded.iv.length !== GCM_IV_BYTES || decoded.tag.length !== GCM_TAG_BYTES) {
    throw new EnvelopeError("malformed_envelope", `sealed value must have a ${GCM_IV_BYTES}-byte nonce and a ${GCM_TAG_BYTES}-byte tag`);
  }
  return decoded;
}

/**
 * Decodes base64url strictly: Node's decoder skips unknown characters and ignores
 * trailing bits, so a changed character could otherwise decode to the same bytes.
 */
function decodeBase64url(text: string): Buffer {
  const bytes = Buffer.from(text, "base64url");
  if (!BASE64URL_PATTERN.test(text) || bytes.toString("base64url") !== text) {
    throw new EnvelopeError("malformed_envelope", "sealed value contains invalid base64url");
  }
  return bytes;
}
