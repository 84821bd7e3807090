import { randomUUID } from "node:crypto";
import { decodeProtectedHeader, jwtVerify, SignJWT, type JWTPayload } from "jose";
import type { ActiveSigningKey, SigningKeyRing } from "./signing-key-ring.js";

/** JWT header type of an RFC 9068 access token. */
export const ACCESS_TOKEN_TYPE = "at+jwt";

export interface AccessTokenClaims {
  issuer: string;
  serviceAccountId: string;
  audience: string;
  scopes: string[];
  leaseId: string;
  issuedAt: Date;
  expiresAt: Date;
}

/**
 * Signs an RFC 9068 access token with `key` and returns the token, its `jti` and the signing
 * `kid`. Callers read `key` from the key ring before they open a transaction: the key ring
 * queries through the pool, and on PGlite, which has one connection, that query would wait
 * forever for the open transaction.
 */
export async function signAccessToken(
  key: ActiveSigningKey,
  claims: AccessTokenClaims,
): Promise<{ token: string; jti: string; kid: string }> {
  const jti = randomUUID();
  const token = await new SignJWT({
    client_id: claims.serviceAccountId,
    scope: claims.scopes.join(" "),
    lease_id: claims.leaseId,
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: ACCESS_TOKEN_TYPE })
    .setIssuer(claims.issuer)
    .setSubject(claims.serviceAccountId)
    .setAudience(claims.audience)
    .setIssuedAt(Math.floor(claims.issuedAt.getTime() / 1000))
    .setNotBefore(Math.floor(claims.issuedAt.getTime() / 1000))
    .setExpirationTime(Math.floor(claims.expiresAt.getTime() / 1000))
    .setJti(jti)
    .sign(key.privateKey);
  return { token, jti, kid: key.kid };
}

/**
 * Verifies an access token this broker issued: `typ` at+jwt, a published signing key,
 * the broker as issuer, and unexpired. Returns the claims, or undefined when any check
 * fails; whether its lease is still live is for the caller to check.
 */
export async function verifyOwnAccessToken(
  keyRing: SigningKeyRing,
  token: string,
  options: { issuer: string; now: Date; audience?: string },
): Promise<JWTPayload | undefined> {
  try {
    const header = decodeProtectedHeader(token);
    if (header.typ !== ACCESS_TOKEN_TYPE || typeof header.kid !== "string") {
      return undefined;
    }
    const verification = await keyRing.verificationKey(header.kid);
    if (!verification) {
      return undefined;
    }
    const { payload } = await jwtVerify(token, verification.key, {
      algorithms: [verification.alg],
      issuer: options.issuer,
      audience: options.audience,
      typ: ACCESS_TOKEN_TYPE,
      currentDate: options.now,
      requiredClaims: ["exp", "jti", "sub"],
    });
    return payload;
  } catch {
    return undefined;
  }
}
