import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../config/config.js";

/** AES-256 key length in bytes. */
const MASTER_KEY_BYTES = 32;
/** GCM nonce length recommended by NIST SP 800-38D. */
const GCM_IV_BYTES = 12;
const ENVELOPE_VERSION = "v1";
export const MASTER_KEY_FILE = "master.key";

/** The key that wraps signing keys and data keys, and where it came from. */
export interface MasterKey {
  key: Buffer;
  source: "environment" | "file";
  /** Set when the key came from the data directory, so start-up can warn about it. */
  file?: string;
  created: boolean;
}

/**
 * Returns the master key from `BROKER_MASTER_KEY` (32 bytes, base64 or hex) or from the
 * key file in the data directory, creating that file with mode 0600 on first use.
 */
export async function loadMasterKey(configured: string | undefined, dataDir: string): Promise<MasterKey> {
  if (configured) {
    return { key: decodeMasterKey(configured), source: "environment", created: false };
  }

  const file = path.join(dataDir, MASTER_KEY_FILE);
  try {
    const contents = await readFile(file, "utf8");
    return { key: decodeMasterKey(contents.trim(), file), source: "file", file, created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw error;
    }
  }

  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(MASTER_KEY_BYTES);
  await writeFile(file, `${key.toString("base64")}\n`, { mode: 0o600, flag: "wx" });
  await chmod(file, 0o600);
  return { key, source: "file", file, created: true };
}

function decodeMasterKey(encoded: string, file?: string): Buffer {
  const origin = file ? `master key file ${file}` : "BROKER_MASTER_KEY";
  const key = /^[0-9a-fA-F]{64}$/.test(encoded) ? Buffer.from(encoded, "hex") : Buffer.from(encoded, "base64");
  if (key.length !== MASTER_KEY_BYTES) {
    throw new ConfigError(
      `${origin} must hold ${MASTER_KEY_BYTES} bytes as base64 or hex; generate one with: openssl rand -base64 32`,
    );
  }
  return key;
}

/** Returns true when the file exists and only its owner can read it. */
export async function isOwnerOnly(file: string): Promise<boolean> {
  const info = await stat(file);
  return (info.mode & 0o077) === 0;
}

/**
 * Encrypts with AES-256-GCM. `context` is bound as additional authenticated data, so a
 * ciphertext moved to another record fails to decrypt.
 */
export function seal(key: Buffer, plaintext: Buffer, context: string): string {
  const iv = randomBytes(GCM_IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(context, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [ENVELOPE_VERSION, iv, tag, ciphertext].map((part) => (typeof part === "string" ? part : part.toString("base64url"))).join(".");
}

/** Decrypts what `seal` produced; throws when the key, the context or any byte differs. */
export function open(key: Buffer, envelope: string, context: string): Buffer {
  const [version, iv, tag, ciphertext] = envelope.split(".");
  if (version !== ENVELOPE_VERSION || !iv || !tag || ciphertext === undefined) {
    throw new Error("sealed value has an unknown format");
  }
  const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
  decipher.setAAD(Buffer.from(context, "utf8"));
  decipher.setAuthTag(Buffer.from(tag, "base64url"));
  return Buffer.concat([decipher.update(Buffer.from(ciphertext, "base64url")), decipher.final()]);
}
