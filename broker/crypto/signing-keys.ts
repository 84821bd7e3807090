import { calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";
import type { Clock } from "../config/clock.js";
import type { Executor } from "../db/database.js";
import { signingKeys } from "../db/schema.js";
import type { MasterKeyRing } from "./master-key-ring.js";

export const SIGNING_ALGORITHMS = ["ES256", "EdDSA", "RS256"] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** ES256 by default: every common JWT verifier accepts it, unlike EdDSA. */
export const DEFAULT_SIGNING_ALGORITHM: SigningAlgorithm = "ES256";

/** Returns the context a signing key's private key is sealed under, so that a ciphertext moved to another key fails to open. */
export function signingKeySealContext(kid: string): string {
  return `signing-key:${kid}`;
}

/**
 * Generates a signing key pair, stores the private key sealed under the current master key and
 * returns the new key's `kid` (the RFC 7638 thumbprint of its public JWK).
 */
export async function createSigningKey(
  tx: Executor,
  masterKeys: MasterKeyRing,
  clock: Clock,
  alg: SigningAlgorithm = DEFAULT_SIGNING_ALGORITHM,
  activatesAt?: Date,
): Promise<string> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const privateJwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(publicJwk);

  const sealed = masterKeys.seal(Buffer.from(JSON.stringify(privateJwk), "utf8"), signingKeySealContext(kid));
  await tx.insert(signingKeys).values({
    kid,
    alg,
    publicJwk: { ...publicJwk, kid, alg, use: "sig" },
    privateKeyCiphertext: sealed,
    status: "active",
    createdAt: clock.now(),
    activatesAt: activatesAt ?? clock.now(),
  });
  return kid;
}
