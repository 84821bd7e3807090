import { calculateJwkThumbprint, importJWK, type JWK } from "jose";
import type { InvalidParam } from "../errors.js";

/** JWK members that carry private or symmetric key material (RFC 7517 and RFC 7518 section 6). */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/** Smallest RSA modulus accepted, in bits (NIST SP 800-131A). */
export const MIN_RSA_BITS = 2048;

const ALGORITHMS_BY_KEY_TYPE: Record<string, readonly string[]> = {
  "EC:P-256": ["ES256"],
  "OKP:Ed25519": ["EdDSA", "Ed25519"],
  RSA: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
};

/** A public key accepted for client assertions or subject-token checks. */
export interface ValidatedJwk {
  jwk: Record<string, unknown>;
  kid: string;
  alg: string;
}

/**
 * Checks that `jwk` is a public EC P-256, Ed25519 or RSA (at least 2048-bit) key and
 * returns it with its `kid` (the RFC 7638 thumbprint when absent) and algorithm.
 * Returns the problems found instead, each naming the member under `field`.
 */
export async function validatePublicJwk(
  jwk: Record<string, unknown>,
  field: string,
  allowedUses: readonly string[] = ["sig"],
): Promise<{ ok: ValidatedJwk } | { errors: InvalidParam[] }> {
  const privateMembers = PRIVATE_MEMBERS.filter((member) => member in jwk);
  if (privateMembers.length > 0) {
    return fail(`${field}`, `contains private or symmetric key material (${privateMembers.join(", ")}); register only the public key`);
  }

  const family = keyFamily(jwk);
  const allowed = family ? ALGORITHMS_BY_KEY_TYPE[family] : undefined;
  if (!family || !allowed) {
    return fail(`${field}.kty`, "must be an EC key on P-256, an OKP key on Ed25519, or an RSA key");
  }
  if (family === "RSA") {
    const bits = rsaModulusBits(jwk["n"]);
    if (bits < MIN_RSA_BITS) {
      return fail(`${field}.n`, `RSA modulus is ${bits} bits; at least ${MIN_RSA_BITS} are required`);
    }
  }
  const alg = typeof jwk["alg"] === "string" ? jwk["alg"] : allowed[0]!;
  if (!allowed.includes(alg)) {
    return fail(`${field}.alg`, `${alg} does not fit this key type; use one of ${allowed.join(", ")}`);
  }
  if (jwk["use"] !== undefined && !allowedUses.includes(jwk["use"] as string)) {
    return fail(`${field}.use`, `must be ${allowedUses.map((use) => `'${use}'`).join(" or ")} when present`);
  }

  try {
    await importJWK(jwk as JWK, alg === "Ed25519" ? "EdDSA" : alg);
  } catch {
    return fail(field, "is not a valid public key for its type (check x, y, n and e)");
  }

  if (jwk["kid"] !== undefined && (typeof jwk["kid"] !== "string" || jwk["kid"].length === 0 || jwk["kid"].length > 256)) {
    return fail(`${field}.kid`, "must be a non-empty string of at most 256 characters");
  }
  const kid = (jwk["kid"] as string | undefined) ?? (await calculateJwkThumbprint(jwk as JWK));
  return { ok: { jwk: { ...jwk, kid }, kid, alg } };
}

function keyFamily(jwk: Record<string, unknown>): string | undefined {
  if (jwk["kty"] === "RSA") return "RSA";
  if (jwk["kty"] === "EC" || jwk["kty"] === "OKP") return `${jwk["kty"]}:${String(jwk["crv"])}`;
  return undefined;
}

function rsaModulusBits(n: unknown): number {
  if (typeof n !== "string") {
    return 0;
  }
  const bytes = Buffer.from(n, "base64url");
  const leading = bytes.findIndex((byte) => byte !== 0);
  if (leading < 0) {
    return 0;
  }
  return (bytes.length - leading) * 8 - Math.clz32(bytes[leading]!) + 24;
}

function fail(name: string, reason: string): { errors: InvalidParam[] } {
  return { errors: [{ name, reason }] };
}
