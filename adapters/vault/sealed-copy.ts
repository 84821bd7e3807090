import { timingSafeEqual } from "node:crypto";
import type { SecretData, SecretRef, VersionRef } from "../contract.js";
import { UpstreamConflict } from "../errors.js";
import { valueContext } from "../local/local-adapter.js";
import type { ValueSealer } from "../local/value-sealer.js";

/**
 * The broker keeps a sealed copy of each value the adapter writes to Vault, so that the
 * test step can prove that the version Vault returns is the one the broker wrote. The
 * copy is sealed as the local adapter seals its values, bound to the secret id and version.
 */
export async function sealCopy(sealer: ValueSealer, secret: SecretRef, version: string, data: SecretData): Promise<string> {
  return sealer.seal(Buffer.from(canonicalJson(data), "utf8"), valueContext(secret.id, version));
}

/** Compares `data` read from Vault with the sealed copy of `version`; a difference is `UpstreamConflict`. */
export async function requireSameAsCopy(sealer: ValueSealer, secret: SecretRef, version: VersionRef, data: SecretData, location: string): Promise<void> {
  if (version.sealedValue === null) {
    return;
  }
  if (!(await matchesCopy(sealer, secret, version, data))) {
    throw new UpstreamConflict(
      `version ${version.version} at ${location} (secret ${secret.name}) differs from the value the broker wrote; someone changed it in Vault, so rotate again`,
    );
  }
}

/** Tells whether `data` equals the sealed copy of `version`; false when the broker keeps no copy. */
export async function matchesCopy(sealer: ValueSealer, secret: SecretRef, version: VersionRef, data: SecretData): Promise<boolean> {
  if (version.sealedValue === null) {
    return false;
  }
  const expected = await sealer.open(version.sealedValue, valueContext(secret.id, version.version));
  return sameBytes(expected, Buffer.from(canonicalJson(data), "utf8"));
}

/** Tells whether two values have the same fields with the same values, in constant time for values of one length. */
export function sameValue(first: SecretData, second: SecretData): boolean {
  return sameBytes(Buffer.from(canonicalJson(first), "utf8"), Buffer.from(canonicalJson(second), "utf8"));
}

function sameBytes(first: Buffer, second: Buffer): boolean {
  return first.length === second.length && timingSafeEqual(first, second);
}

/** JSON with keys in sorted order, so that equal values compare equal whatever order Vault returns the fields in. */
function canonicalJson(data: SecretData): string {
  const names = Object.keys(data).sort();
  return JSON.stringify(Object.fromEntries(names.map((name) => [name, data[name]])));
}
