import { decodeJwt, decodeProtectedHeader, errors, type JWTPayload, type ProtectedHeaderParameters } from "jose";
import { OAuthError, type OAuthErrorCode } from "./oauth-error.js";

/**
 * Asymmetric algorithms accepted on incoming JWTs. `none` and the HMAC family are
 * never accepted (RFC 8725 sections 2.1 and 3.1).
 */
export const ACCEPTED_JWT_ALGORITHMS = ["ES256", "ES384", "EdDSA", "Ed25519", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];

/** Largest client assertion or subject token read, in bytes; real ones are under 2 KiB. */
export const MAX_INCOMING_JWT_BYTES = 16 * 1024;

/** Decoded but unverified parts of a compact JWS, after the shape and algorithm checks. */
export interface UnverifiedJwt {
  header: ProtectedHeaderParameters;
  payload: JWTPayload;
}

/** Checks size, compact form and algorithm before any key lookup; `error` is the OAuth code to raise. */
export function decodeIncomingJwt(token: string, what: string, error: OAuthErrorCode): UnverifiedJwt {
  if (Buffer.byteLength(token, "utf8") > MAX_INCOMING_JWT_BYTES) {
    throw new OAuthError(error, `${what} is larger than ${MAX_INCOMING_JWT_BYTES} bytes`, "too_large");
  }
  let header: ProtectedHeaderParameters;
  let payload: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    payload = decodeJwt(token);
  } catch {
    throw new OAuthError(error, `${what} is not a compact signed JWT`, "malformed");
  }
  if (token.split(".").length !== 3) {
    throw new OAuthError(error, `${what} is not a compact signed JWT`, "malformed");
  }
  if (!header.alg || !ACCEPTED_JWT_ALGORITHMS.includes(header.alg)) {
    throw new OAuthError(error, `${what} algorithm ${String(header.alg)} is not allowed; use ES256, EdDSA, RS256 or PS256`, "algorithm");
  }
  return { header, payload };
}

/** Turns a jose verification error into an OAuth error that names the failed check. */
export function describeVerificationError(error: unknown, what: string, code: OAuthErrorCode): OAuthError {
  if (error instanceof OAuthError) {
    return error;
  }
  if (error instanceof errors.JWTExpired) {
    return new OAuthError(code, `${what} has expired (exp)`, "expired");
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    const reason = error.claim === "aud" && error.reason === "check_failed" ? "it names none of the accepted audiences" : error.reason;
    return new OAuthError(code, `${what} claim ${error.claim} is invalid: ${reason}`, `claim_${error.claim}`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new OAuthError(code, `${what} signature does not verify`, "signature");
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return new OAuthError(code, `${what} kid matches no key of its issuer`, "unknown_kid");
  }
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JOSEError) {
    return new OAuthError(code, `${what} could not be verified: ${error.message}`, "verification");
  }
  return new OAuthError(code, `${what} could not be verified`, "verification");
}
