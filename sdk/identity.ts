import { createPrivateKey, KeyObject, randomUUID, type webcrypto } from "node:crypto";
import { readFile } from "node:fs/promises";
import { type JWK, SignJWT } from "jose";
import type { BrokerMetadata } from "./discovery.js";
import { InvalidConfiguration } from "./errors.js";

/** A workload identity proof for the token endpoint. */
export interface Identity {
  /** The token request's form parameters that prove the identity; audience and scope are added by the client. */
  tokenRequest(metadata: BrokerMetadata): Promise<Record<string, string>>;
}

export const JWT_BEARER_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
export const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";
/** Explicit typing of client assertions (RFC 8725 section 3.11, draft-ietf-oauth-rfc7523bis). */
const ASSERTION_TYPE_HEADER = "client-authentication+jwt";
const DEFAULT_ASSERTION_LIFETIME_SECONDS = 60;
/** The broker accepts assertions that live at most five minutes. */
const MAX_ASSERTION_LIFETIME_SECONDS = 300;
const MIN_RSA_BITS = 2048;

export interface PrivateKeyJwtOptions {
  /** The service account id, which is its OAuth client_id. */
  clientId: string;
  /** The private key: a PEM (PKCS#8) string, a private JWK, a Node KeyObject or a WebCrypto CryptoKey. */
  key: string | JWK | KeyObject | webcrypto.CryptoKey;
  /** The key id registered on the service account; taken from a JWK's `kid` when not given. */
  kid?: string;
  /** Seconds each assertion is valid, 1 to 300; default 60. */
  assertionLifetimeSeconds?: number;
}

/**
 * Proves the identity with a client assertion (RFC 7523, `private_key_jwt`) signed by a
 * key registered on the service account: ES256 for P-256, EdDSA for Ed25519, RS256 for
 * RSA. Each assertion gets a fresh `jti`, since the broker accepts each one only once.
 * Assertion times come from the system clock, which the broker checks them against.
 */
export function privateKeyJwt(options: PrivateKeyJwtOptions): Identity {
  if (typeof options.clientId !== "string" || options.clientId.trim() === "") {
    throw new InvalidConfiguration("privateKeyJwt: clientId is required: the service account id, such as sa_...");
  }
  const lifetime = options.assertionLifetimeSeconds ?? DEFAULT_ASSERTION_LIFETIME_SECONDS;
  if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > MAX_ASSERTION_LIFETIME_SECONDS) {
    throw new InvalidConfiguration(`privateKeyJwt: assertionLifetimeSeconds must be an integer from 1 to ${MAX_ASSERTION_LIFETIME_SECONDS}`);
  }
  const key = toPrivateKey(options.key);
  const alg = signingAlgorithm(key);
  const kid = options.kid ?? jwkKid(options.key);
  const clientId = options.clientId;

  return {
    async tokenRequest(metadata) {
      const now = Math.floor(Date.now() / 1000);
      const assertion = await new SignJWT({})
        .setProtectedHeader(kid === undefined ? { alg, typ: ASSERTION_TYPE_HEADER } : { alg, kid, typ: ASSERTION_TYPE_HEADER })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(metadata.issuer)
        .setJti(randomUUID())
        .setIssuedAt(now)
        .setExpirationTime(now + lifetime)
        .sign(key);
      return {
        grant_type: "client_credentials",
        client_id: clientId,
        client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
        client_assertion: assertion,
      };
    },
  };
}

export interface FederatedTokenOptions {
  /** A file holding the platform's token, such as a Kubernetes projected service-account token; read on every exchange. */
  tokenFile?: string;
  /** Returns the platform's token, such as a GitHub Actions OIDC token; called on every exchange. */
  getToken?: () => string | Promise<string>;
  /** The RFC 8693 subject_token_type; default `urn:ietf:params:oauth:token-type:jwt`. */
  tokenType?: string;
}

/**
 * Proves the identity by exchanging a token from the platform (RFC 8693). The token is
 * read again for every exchange, because platforms rotate it (the kubelet rewrites a
 * projected token at 80% of its lifetime).
 */
export function federatedToken(options: FederatedTokenOptions): Identity {
  const { tokenFile, getToken } = options;
  if ((tokenFile === undefined) === (getToken === undefined)) {
    throw new InvalidConfiguration("federatedToken: give exactly one of tokenFile or getToken");
  }
  const tokenType = options.tokenType ?? JWT_TOKEN_TYPE;
  const readToken = tokenFile !== undefined ? () => readTokenFile(tokenFile) : getToken!;

  return {
    async tokenRequest() {
      const subjectToken = (await readToken()).trim();
      if (subjectToken === "") {
        throw new InvalidConfiguration(`federatedToken: the subject token is empty${tokenFile ? ` in ${tokenFile}` : ""}`);
      }
      return { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: subjectToken, subject_token_type: tokenType };
    },
  };
}

async function readTokenFile(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (cause) {
    const code = (cause as { code?: string }).code ?? "read error";
    throw new InvalidConfiguration(`federatedToken: cannot read the token file ${file} (${code})`);
  }
}

function toPrivateKey(key: PrivateKeyJwtOptions["key"]): KeyObject {
  if (key instanceof KeyObject) {
    return requirePrivate(key);
  }
  if (isCryptoKey(key)) {
    return requirePrivate(KeyObject.from(key));
  }
  try {
    if (typeof key === "string") {
      return requirePrivate(createPrivateKey(key));
    }
    if (key && typeof key === "object" && "kty" in key) {
      if (typeof (key as { d?: unknown }).d !== "string") {
        throw new InvalidConfiguration("privateKeyJwt: key is a public JWK; pass the private key (with its d member)");
      }
      return createPrivateKey({ key: key as JWK & { kty: string }, format: "jwk" });
    }
  } catch (error) {
    if (error instanceof InvalidConfiguration) throw error;
    throw new InvalidConfiguration("privateKeyJwt: key is not a readable private key: pass a PKCS#8 PEM string, a private JWK, a KeyObject or a CryptoKey");
  }
  throw new InvalidConfiguration("privateKeyJwt: key must be a PKCS#8 PEM string, a private JWK, a KeyObject or a CryptoKey");
}

/** WebCrypto's CryptoKey class is global in Node 20, but not in the types of a non-DOM build. */
function isCryptoKey(key: unknown): key is webcrypto.CryptoKey {
  const cryptoKeyClass = (globalThis as { CryptoKey?: abstract new () => unknown }).CryptoKey;
  return cryptoKeyClass !== undefined && key instanceof cryptoKeyClass;
}

function requirePrivate(key: KeyObject): KeyObject {
  if (key.type !== "private") {
    throw new InvalidConfiguration("privateKeyJwt: key is a public key; pass the private key");
  }
  return key;
}

/** Returns the JWS algorithm for a key: ES256 (P-256), EdDSA (Ed25519) or RS256 (RSA of 2048 bits or more). */
function signingAlgorithm(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "ec":
      if (details.namedCurve === "prime256v1") return "ES256";
      break;
    case "ed25519":
      return "EdDSA";
    case "rsa":
      if ((details.modulusLength ?? 0) >= MIN_RSA_BITS) return "RS256";
      throw new InvalidConfiguration(`privateKeyJwt: RSA keys need at least ${MIN_RSA_BITS} bits`);
  }
  throw new InvalidConfiguration("privateKeyJwt: key must be EC P-256, Ed25519 or RSA of at least 2048 bits");
}

function jwkKid(key: PrivateKeyJwtOptions["key"]): string | undefined {
  if (key && typeof key === "object" && !(key instanceof KeyObject) && "kty" in key) {
    return typeof key.kid === "string" ? key.kid : undefined;
  }
  return undefined;
}
