import { and, eq } from "drizzle-orm";
import { type JWK, type JWTPayload, jwtVerify } from "jose";
import type { BrokerConfig } from "../config/config.js";
import type { Clock } from "../config/clock.js";
import type { Db } from "../db/database.js";
import { federatedSubjects, serviceAccounts, trustedIssuers } from "../db/schema.js";
import type { ServiceAccountRow } from "../register/service-accounts-service.js";
import { localKeySet, RemoteKeySet } from "./issuer-key-set.js";
import { ACCEPTED_JWT_ALGORITHMS, decodeIncomingJwt, describeVerificationError } from "./jwt-rules.js";
import { OAuthError } from "./oauth-error.js";

/**
 * Subject token types accepted for a JWT: implementations differ on which URI they send
 * (RFC 8693 section 3 defines all three).
 */
export const JWT_SUBJECT_TOKEN_TYPES = [
  "urn:ietf:params:oauth:token-type:jwt",
  "urn:ietf:params:oauth:token-type:id_token",
  "urn:ietf:params:oauth:token-type:access_token",
];

type TrustedIssuerRow = typeof trustedIssuers.$inferSelect;
type KeySet = RemoteKeySet["resolve"];

/** A workload identified by a federated subject token. */
export interface FederatedIdentity {
  account: ServiceAccountRow;
  issuer: string;
  subject: string;
}

/** Remote key sets per issuer, kept for the life of the process so that their caches work. */
export class JwksCache {
  private readonly sets = new Map<string, RemoteKeySet>();

  forIssuer(issuer: TrustedIssuerRow): KeySet {
    if (issuer.jwks) {
      return localKeySet(issuer.jwks.keys as JWK[]);
    }
    const key = `${issuer.id} ${issuer.jwksUri}`;
    let set = this.sets.get(key);
    if (!set) {
      set = new RemoteKeySet(new URL(issuer.jwksUri!));
      this.sets.set(key, set);
    }
    return set.resolve;
  }
}

/**
 * Verifies a subject token from a trusted issuer and maps it to the one service account
 * bound to its `sub` and binding claims. Every refusal is `invalid_request`, as RFC 8693
 * section 2.2.2 requires for an invalid or unacceptable subject token. Subject tokens may be reused (SPIRE caches
 * JWT-SVIDs), so no `jti` single use is required of them.
 */
export async function verifySubjectToken(
  deps: { db: Db; clock: Clock; config: BrokerConfig; jwks: JwksCache },
  token: string,
): Promise<FederatedIdentity> {
  const { payload: unverified } = decodeIncomingJwt(token, "subject_token", "invalid_request");
  if (typeof unverified.iss !== "string") {
    throw new OAuthError("invalid_request", "subject_token has no iss claim", "claim_iss");
  }
  const [issuer] = await deps.db.select().from(trustedIssuers).where(eq(trustedIssuers.issuer, unverified.iss));
  if (!issuer) {
    throw new OAuthError("invalid_request", `subject_token issuer ${unverified.iss} is not trusted`, "untrusted_issuer");
  }

  const now = deps.clock.now();
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, deps.jwks.forIssuer(issuer), {
      algorithms: ACCEPTED_JWT_ALGORITHMS,
      issuer: issuer.issuer,
      audience: issuer.audiences.length > 0 ? issuer.audiences : [deps.config.issuer],
      currentDate: now,
      clockTolerance: deps.config.clockSkew,
      requiredClaims: ["exp", "sub", "aud"],
    }));
  } catch (error) {
    throw describeVerificationError(error, "subject_token", "invalid_request");
  }

  checkFreshness(payload, now, deps.config);
  const account = await boundAccount(deps.db, issuer, payload);
  return { account, issuer: issuer.issuer, subject: payload.sub! };
}

/**
 * Kubernetes tokens with extended expiration carry `kubernetes.io.warnafter`, the time
 * the kubelet would have refreshed them: past it the token is treated as expired.
 * Any token older than the configured maximum age is refused too.
 */
function checkFreshness(payload: JWTPayload, now: Date, config: BrokerConfig): void {
  const nowSeconds = Math.floor(now.getTime() / 1000);
  const kubernetes = payload["kubernetes.io"] as { warnafter?: unknown } | undefined;
  if (typeof kubernetes?.warnafter === "number" && nowSeconds > kubernetes.warnafter + config.clockSkew) {
    throw new OAuthError("invalid_request", "subject_token is past its kubernetes.io warnafter time: read the projected token file again", "warnafter");
  }
  if (typeof payload.iat === "number" && nowSeconds - payload.iat > config.maxSubjectTokenAge) {
    throw new OAuthError("invalid_request", `subject_token was issued more than ${config.maxSubjectTokenAge} seconds ago`, "too_old");
  }
  if (typeof payload.iat === "number" && payload.iat > nowSeconds + config.clockSkew) {
    throw new OAuthError("invalid_request", "subject_token iat is in the future", "claim_iat");
  }
}

async function boundAccount(db: Db, issuer: TrustedIssuerRow, payload: JWTPayload): Promise<ServiceAccountRow> {
  const bindings = await db
    .select({ binding: federatedSubjects, account: serviceAccounts })
    .from(federatedSubjects)
    .innerJoin(serviceAccounts, eq(serviceAccounts.id, federatedSubjects.serviceAccountId))
    .where(and(eq(federatedSubjects.issuerId, issuer.id), eq(federatedSubjects.subject, payload.sub!)));

  const matching = bindings.filter(({ binding }) => claimsMatch(binding.claims, payload));
  const accounts = new Map(matching.map(({ account }) => [account.id, account]));
  if (accounts.size === 0) {
    throw new OAuthError("invalid_request", `no service account is bound to subject ${payload.sub} of issuer ${issuer.issuer} with these claims`, "unbound_subject");
  }
  if (accounts.size > 1) {
    throw new OAuthError("invalid_request", `subject ${payload.sub} is bound to several service accounts; add binding claims to tell them apart`, "ambiguous_subject");
  }
  return [...accounts.values()][0]!;
}

/** Each binding claim must equal the token's claim of that name, compared as text (GitHub sends numeric ids as strings). */
function claimsMatch(required: Record<string, string>, payload: JWTPayload): boolean {
  return Object.entries(required).every(([name, value]) => {
    const actual = payload[name];
    return (typeof actual === "string" || typeof actual === "number" || typeof actual === "boolean") && String(actual) === value;
  });
}
