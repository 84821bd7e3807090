import { createHmac } from "node:crypto";
import type { SecretData } from "../../adapters/contract.js";

const FINGERPRINT_PREFIX = "hmac-sha256:";

/**
 * Keyed fingerprint of a value: HMAC-SHA256 under the broker's fingerprint key of the
 * fields in key order, so that equal values match and a stolen fingerprint cannot be
 * checked against guesses offline.
 */
export function fingerprintOf(key: Buffer, data: SecretData): string {
  const canonical = JSON.stringify(Object.keys(data).sort().map((field) => [field, data[field]]));
  return FINGERPRINT_PREFIX + createHmac("sha256", key).update(canonical, "utf8").digest("hex");
}

/** Converts a value as operators give it to secret data: one string becomes field `value`. */
export function toSecretData(value: string | Record<string, string>): SecretData {
  return typeof value === "string" ? { value } : value;
}
