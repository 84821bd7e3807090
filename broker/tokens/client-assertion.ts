import { jwtVerify } from "jose";
import type { BrokerConfig } from "../config/config.js";
import type { Clock } from "../config/clock.js";
import type { Db, Executor } from "../db/database.js";
import { usedAssertions } from "../db/schema.js";
import type { ServiceAccountRow } from "../register/service-accounts-service.js";
import { type AccountVersion, cachedAccountSnapshot, readAccountSnapshot, type WorkloadKeyRow } from "./account-snapshot.js";
import { decodeIncomingJwt, describeVerificationError } from "./jwt-rules.js";
import { OAuthError, type OAuthErrorCode } from "./oauth-error.js";
import { WorkloadKeyCache } from "./workload-key-cache.js";

export const JWT_BEARER_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/** Longest accepted assertion lifetime (`exp` minus `iat`), in seconds. */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;
const MAX_JTI_LENGTH = 256;
/** Header types that mark a JWT as something other than a client assertion, e.g. an access token (RFC 8725 section 3.11). */
const ACCEPTED_ASSERTION_TYPES = [undefined, "JWT", "client-authentication+jwt"];
const workloadKeyCache = new WorkloadKeyCache();

/** An assertion's `jti` as stored in `used_assertions`, kept until `expiresAt`. */
export interface AssertionUse {
  issuer: string;
  jti: string;
  expiresAt: Date;
}

/** A client that proved its identity with a private_key_jwt assertion. */
export interface AuthenticatedClient {
  account: ServiceAccountRow;
  kid: string;
  /** The assertion's `jti`, which the caller must record (see `recordAssertionUse`) before it acts on the request. */
  assertionUse: AssertionUse;
  /** The account and key set the assertion was checked against. */
  accountVersion: AccountVersion;
}

type ClientAssertionDeps = { db: Db; clock: Clock; config: BrokerConfig };

/**
 * Authenticates a client from its RFC 7523 assertion and records its `jti`, in a statement
 * of its own, so that the assertion cannot be used again.
 */
export async function authenticateClientAssertion(deps: ClientAssertionDeps, form: Map<string, string>): Promise<AuthenticatedClient> {
  const client = await verifyClientAssertion(deps, form);
  await recordAssertionUse(deps.db, client.assertionUse);
  return client;
}

export interface VerifyOptions {
  /**
   * Use this process's snapshot of the account and its keys. Only for a caller whose write
   * checks `accountVersion` in the same statement (the token endpoint), because the snapshot
   * may be stale.
   */
  cachedAccount?: boolean;
}

/**
 * Checks a client's RFC 7523 assertion: allowed algorithm, a key registered on the
 * account, `iss` = `sub` = the account id, `aud` exactly the broker's issuer or token
 * endpoint, `exp` within five minutes of `iat`, and a well-formed `jti`. It does not
 * record the `jti`: the caller records it in the same commit as what it does for the
 * request (`recordAssertionUse` in its transaction, or the token endpoint's `recordIssuance`),
 * so that a replay is rejected and changes nothing.
 */
export async function verifyClientAssertion(
  deps: ClientAssertionDeps,
  form: Map<string, string>,
  options: VerifyOptions = {},
): Promise<AuthenticatedClient> {
  const assertion = form.get("client_assertion");
  const type = form.get("client_assertion_type");
  if (!assertion || !type) {
    throw new OAuthError(
      "invalid_client",
      "client authentication is required: send client_assertion_type and client_assertion (private_key_jwt), or an operator token where the endpoint accepts one",
      "missing",
    );
  }
  if (type !== JWT_BEARER_ASSERTION_TYPE) {
    throw new OAuthError("invalid_client", `client_assertion_type must be ${JWT_BEARER_ASSERTION_TYPE}`, "assertion_type");
  }

  const { header, payload } = decodeIncomingJwt(assertion, "client assertion", "invalid_client");
  if (!ACCEPTED_ASSERTION_TYPES.includes(header.typ)) {
    throw new OAuthError("invalid_client", `client assertion typ ${header.typ} is not a client assertion`, "typ");
  }
  if (typeof payload.sub !== "string" || payload.iss !== payload.sub) {
    throw new OAuthError("invalid_client", "client assertion iss and sub must both be the service account id", "claim_sub");
  }
  const clientId = form.get("client_id");
  if (clientId !== undefined && clientId !== payload.sub) {
    throw new OAuthError("invalid_client", "client_id does not match the client assertion sub", "client_id");
  }

  const now = deps.clock.now();
  const snapshot = options.cachedAccount
    ? await cachedAccountSnapshot(deps.db, payload.sub, now.getTime())
    : await readAccountSnapshot(deps.db, payload.sub);
  const { account, keys } = snapshot;
  const key = selectKey(keys, header.kid, header.alg!);
  try {
    await jwtVerify(assertion, await workloadKeyCache.verificationKey(key, header.alg!), {
      algorithms: [header.alg!],
      issuer: account.id,
      subject: account.id,
      currentDate: now,
      clockTolerance: deps.config.clockSkew,
      requiredClaims: ["exp", "jti", "aud"],
    });
  } catch (error) {
    throw describeVerificationError(error, "client assertion", "invalid_client");
  }

  checkAudience(payload.aud, deps.config.issuer);
  checkLifetime(payload.exp!, payload.iat, now, deps.config.clockSkew);
  checkAccountUsable(account, now);
  const jti = checkJti(payload.jti);
  const assertionUse = { issuer: account.id, jti, expiresAt: new Date((payload.exp! + deps.config.clockSkew) * 1000) };
  return { account, kid: key.kid, assertionUse, accountVersion: snapshot.version };
}

function selectKey(keys: WorkloadKeyRow[], kid: string | undefined, alg: string): WorkloadKeyRow {
  const candidates = kid === undefined ? keys.filter((key) => algorithmFits(key.alg, alg)) : keys.filter((key) => key.kid === kid);
  if (candidates.length === 0) {
    throw new OAuthError(
      "invalid_client",
      kid === undefined ? `no key for ${alg} is registered on the service account` : "client assertion kid matches no key registered on the service account",
      "unknown_kid",
    );
  }
  if (candidates.length > 1) {
    throw new OAuthError("invalid_client", "several keys could verify the client assertion: set kid in its header", "ambiguous_key");
  }
  const key = candidates[0]!;
  if (!algorithmFits(key.alg, alg)) {
    throw new OAuthError("invalid_client", `client assertion alg ${alg} does not match the registered key's ${key.alg}`, "algorithm");
  }
  return key;
}

function algorithmFits(registered: string, presented: string): boolean {
  if (registered === presented) return true;
  const eddsa = ["EdDSA", "Ed25519"];
  if (eddsa.includes(registered) && eddsa.includes(presented)) return true;
  // An RSA key may sign with any RSA algorithm; its registered alg is only the default.
  return /^(RS|PS)\d{3}$/.test(registered) && /^(RS|PS)\d{3}$/.test(presented);
}

/**
 * `aud` must be a single string equal to the issuer identifier or the token endpoint,
 * compared exactly: arrays and extra audiences open audience-injection attacks
 * (draft-ietf-oauth-rfc7523bis section 4).
 */
function checkAudience(aud: unknown, issuer: string): void {
  const accepted = [issuer, `${issuer}/v1/token`];
  if (typeof aud !== "string") {
    throw new OAuthError("invalid_client", "client assertion aud must be a single string: the broker's issuer", "claim_aud");
  }
  if (!accepted.includes(aud)) {
    throw new OAuthError("invalid_client", `client assertion aud must be ${issuer}`, "claim_aud");
  }
}

function checkLifetime(exp: number, iat: number | undefined, now: Date, skew: number): void {
  const nowSeconds = Math.floor(now.getTime() / 1000);
  if (iat !== undefined && iat > nowSeconds + skew) {
    throw new OAuthError("invalid_client", "client assertion iat is in the future", "claim_iat");
  }
  const start = iat ?? nowSeconds;
  if (exp - start > MAX_ASSERTION_LIFETIME_SECONDS) {
    throw new OAuthError("invalid_client", `client assertion lifetime exceeds ${MAX_ASSERTION_LIFETIME_SECONDS} seconds`, "lifetime");
  }
}

/**
 * Refuses a suspended, decommissioned or expired account: `invalid_client` when it
 * authenticated as a client, `invalid_request` in a token exchange, where RFC 8693
 * section 2.2.2 requires that code for any subject token refused by policy.
 */
export function checkAccountUsable(account: ServiceAccountRow, now: Date, code: OAuthErrorCode = "invalid_client"): void {
  if (account.status !== "active") {
    throw new OAuthError(code, `service account ${account.id} is ${account.status}`, `account_${account.status}`);
  }
  if (account.expiresAt <= now) {
    throw new OAuthError(code, `service account ${account.id} expired at ${account.expiresAt.toISOString()}`, "account_expired");
  }
}

function checkJti(jti: unknown): string {
  if (typeof jti !== "string" || jti.length === 0 || jti.length > MAX_JTI_LENGTH) {
    throw new OAuthError("invalid_client", `client assertion jti must be a string of 1 to ${MAX_JTI_LENGTH} characters`, "claim_jti");
  }
  return jti;
}

/**
 * Records an assertion's `jti` on `db`, which may be an open transaction. A second use, on
 * any replica, finds the primary key taken and is rejected. A concurrent use waits for the
 * first transaction, and is rejected when it commits.
 */
export async function recordAssertionUse(db: Executor, use: AssertionUse): Promise<void> {
  const inserted = await db
    .insert(usedAssertions)
    .values(use)
    .onConflictDoNothing()
    .returning({ jti: usedAssertions.jti })
    .prepare("token_record_assertion_use")
    .execute();
  if (inserted.length === 0) {
    throw assertionReplayed();
  }
}

/** Builds the refusal of an assertion whose `jti` was already used (RFC 7523 section 3). */
export function assertionReplayed(): OAuthError {
  return new OAuthError("invalid_client", "client assertion jti was already used: sign a new assertion for each request", "replay");
}
