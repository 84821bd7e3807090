import { randomBytes } from "node:crypto";
import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../config/config.js";
import { AES_256_KEY_BYTES } from "./envelope.js";
import { createKeyFile, readKeyFile } from "./master-key-file.js";
import { MasterKeyRing, masterKeyId } from "./master-key-ring.js";

export const MASTER_KEY_FILE = "master.key";
/** Separates keys in BROKER_MASTER_KEY: `new,old`. */
const KEY_LIST_SEPARATOR = ",";
const HEX_KEY_PATTERN = new RegExp(`^[0-9a-fA-F]{${AES_256_KEY_BYTES * 2}}$`);
/** Standard or URL-safe base64 of 32 bytes: 43 characters and an optional padding '='. */
const BASE64_KEY_PATTERN = /^[A-Za-z0-9+/_-]{43}=?$/;
const GENERATE_HINT = "generate one with: openssl rand -base64 32";

/**
 * Returns the master keys from `BROKER_MASTER_KEY`: one or more 32-byte keys, base64 or
 * hex, separated by commas, current first. Without it, returns the keys of the key file
 * in the data directory (one key per line, current first) and creates that file with
 * mode 0600 on first use.
 */
export async function loadMasterKey(configured: string | undefined, dataDir: string): Promise<MasterKeyRing> {
  if (configured) {
    const entries = configured.split(KEY_LIST_SEPARATOR);
    return new MasterKeyRing(decodeMasterKeys(entries, (index) => describeEntry("BROKER_MASTER_KEY", "key", index, entries.length)), "environment");
  }

  const file = path.join(dataDir, MASTER_KEY_FILE);
  const existing = await readKeyFile(file);
  if (existing) {
    return ringFromFile(file, existing, false);
  }

  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const key = generateMasterKey();
  if (await createKeyFile(file, [key.toString("base64")])) {
    return new MasterKeyRing([key], "file", file, true);
  }
  // Another process created the file between the read and the create: use its key.
  return ringFromFile(file, (await readKeyFile(file)) ?? [], false);
}

/** Returns a new random 32-byte master key. */
export function generateMasterKey(): Buffer {
  return randomBytes(AES_256_KEY_BYTES);
}

/** Returns true when the file exists and only its owner can read it. */
export async function isOwnerOnly(file: string): Promise<boolean> {
  const info = await stat(file);
  return (info.mode & 0o077) === 0;
}

/** Decodes the lines of a key file into a ring; throws `ConfigError` naming the file and line. */
export function ringFromFile(file: string, lines: string[], created: boolean): MasterKeyRing {
  return new MasterKeyRing(decodeKeyFile(file, lines), "file", file, created);
}

/** Decodes the lines of a key file, current key first; throws `ConfigError` naming the file and line. */
export function decodeKeyFile(file: string, lines: string[]): Buffer[] {
  if (lines.length === 0) {
    throw new ConfigError(`master key file ${file} contains no key; restore it from a backup, since a new key cannot open existing data`);
  }
  return decodeMasterKeys(lines, (index) => describeEntry(`master key file ${file}`, "line", index, lines.length));
}

/**
 * Decodes each entry as 32 bytes of hex or base64. Errors name the entry by position and
 * never echo it, since it may be a key.
 */
function decodeMasterKeys(entries: string[], describe: (index: number) => string): Buffer[] {
  const keys: Buffer[] = [];
  entries.forEach((raw, index) => {
    const encoded = raw.trim();
    if (encoded.length === 0) {
      throw new ConfigError(`${describe(index)} is empty; list the keys separated by commas, the current key first`);
    }
    const key = decodeMasterKey(encoded);
    if (!key) {
      throw new ConfigError(`${describe(index)} must contain ${AES_256_KEY_BYTES} bytes as base64 or hex; ${GENERATE_HINT}`);
    }
    const repeated = keys.findIndex((earlier) => earlier.equals(key));
    if (repeated >= 0) {
      throw new ConfigError(`${describe(index)} repeats ${describe(repeated)} (master key ${masterKeyId(key)}); list each key once`);
    }
    keys.push(key);
  });
  return keys;
}

function decodeMasterKey(encoded: string): Buffer | undefined {
  if (HEX_KEY_PATTERN.test(encoded)) {
    return Buffer.from(encoded, "hex");
  }
  if (BASE64_KEY_PATTERN.test(encoded)) {
    const key = Buffer.from(encoded, "base64");
    return key.length === AES_256_KEY_BYTES ? key : undefined;
  }
  return undefined;
}

/** Names one entry: the whole source when there is one entry, else `<source> key 2 of 3`. */
function describeEntry(source: string, unit: "key" | "line", index: number, count: number): string {
  if (unit === "key" && count === 1) {
    return source;
  }
  return unit === "key" ? `${source} key ${index + 1} of ${count}` : `${source} line ${index + 1}`;
}
