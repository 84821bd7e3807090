import type { RequestContext } from "../audit/audit-types.js";
import { auditDeps } from "../http/auth-middleware.js";
import { newId } from "../db/ids.js";
import type { BrokerDeps } from "../deps.js";
import type { ServiceAccountRow } from "../register/service-accounts-service.js";
import { signAccessToken } from "./access-token.js";
import { selectAudienceGrant } from "../grants/grant-selection.js";
import { type GrantRow, grantStatus } from "../grants/grant-types.js";
import type { AccountVersion } from "./account-snapshot.js";
import { type AssertionUse, assertionReplayed } from "./client-assertion.js";
import { OAuthError } from "./oauth-error.js";
import { type IssuedLease, recordIssuance } from "./record-issuance.js";

export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
export const ACCESS_TOKEN_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

/** A token request, after the token endpoint has identified the caller. */
export interface TokenRequest {
  account: ServiceAccountRow;
  grantType: "client_credentials" | typeof TOKEN_EXCHANGE_GRANT;
  audience: string | undefined;
  scope: string | undefined;
  /** Requested TTL in seconds, if any. */
  ttl: number | undefined;
  clientKid?: string;
  /** The client assertion's `jti`, recorded with the lease so that a replay issues nothing. */
  assertionUse?: AssertionUse;
  /** The account and key set the request was checked against; the lease is recorded only if they are unchanged. */
  accountVersion?: AccountVersion;
  subjectIssuer?: string;
  subject?: string;
}

/**
 * The account changed, was suspended or lost the key between the checks and the write, so
 * nothing was written. The token endpoint checks the request again on a fresh read.
 */
export class AccountChanged extends Error {
  override name = "AccountChanged";

  constructor(readonly serviceAccountId: string) {
    super(`service account ${serviceAccountId} changed while a token was being issued`);
  }
}

/** RFC 6749 section 5.1 token response, plus the broker's lease id. */
export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  scope: string;
  lease_id: string;
  issued_token_type?: string;
}

/**
 * Issues an access token on a new lease. The client assertion's `jti`, the lease row and
 * its audit event commit together, in one statement, before the token is returned. If any
 * write fails, or the `jti` was already used, no token leaves the broker.
 */
export async function issueAccessToken(
  deps: BrokerDeps & { keyRing: import("./signing-key-ring.js").SigningKeyRing },
  context: RequestContext,
  request: TokenRequest,
): Promise<TokenResponse> {
  const { account } = request;
  const now = deps.clock.now();
  const grant = await audienceGrant(deps, account, request.audience, now);
  const audience = request.audience ?? deps.config.issuer;
  const scopes = resolveScopes(account, grant, request.scope);

  const ends = [now.getTime() + deps.config.leaseMaxTtl * 1000, account.expiresAt.getTime(), grant?.notAfter?.getTime() ?? Number.POSITIVE_INFINITY];
  const maxExpiresAt = new Date(Math.min(...ends));
  const ttl = effectiveTtl([request.ttl, account.maxTokenTtl, deps.config.tokenTtlCap, grant?.maxTtl ?? undefined], now, maxExpiresAt);
  const expiresAt = new Date(now.getTime() + ttl * 1000);
  const signingKey = await deps.keyRing.activeKey();
  const leaseId = newId("lease");
  // Signed before the transaction opens, so that the connection is not held idle in it meanwhile.
  const signed = await signAccessToken(signingKey, {
    issuer: deps.config.issuer,
    serviceAccountId: account.id,
    audience,
    scopes,
    leaseId,
    issuedAt: now,
    expiresAt,
  });

  const lease: IssuedLease = {
    id: leaseId,
    serviceAccountId: account.id,
    applicationId: account.applicationId,
    audience,
    scopes,
    tokenJti: signed.jti,
    signingKid: signed.kid,
    grantType: request.grantType,
    clientKid: request.clientKid ?? null,
    subjectIssuer: request.subjectIssuer ?? null,
    subject: request.subject ?? null,
    grantId: grant?.id ?? null,
    issuedAt: now,
    expiresAt,
    maxExpiresAt,
  };
  const auditDetails = {
    service_account_id: account.id,
    grant_type: request.grantType,
    audience,
    scopes,
    ttl,
    jti: signed.jti,
    client_kid: lease.clientKid,
    subject_issuer: lease.subjectIssuer,
    subject: lease.subject,
    grant_id: lease.grantId,
  };
  const actorContext = { ...context, actor: `service_account:${account.id}` };
  const outcome = await recordIssuance(deps.db, actorContext, lease, request.assertionUse, request.accountVersion, auditDetails);
  if (outcome === "stale") {
    throw new AccountChanged(account.id);
  }
  if (outcome === "replayed") {
    throw assertionReplayed();
  }
  auditDeps(deps).onAppended(1);

  const response: TokenResponse = {
    access_token: signed.token,
    token_type: "Bearer",
    expires_in: ttl,
    scope: scopes.join(" "),
    lease_id: leaseId,
  };
  if (request.grantType === TOKEN_EXCHANGE_GRANT) {
    response.issued_token_type = ACCESS_TOKEN_TOKEN_TYPE;
  }
  return response;
}

/**
 * The broker's own issuer is always an allowed audience: its tokens let a workload
 * manage its leases. Any other audience must be in the account's allowed audiences, or
 * be allowed by a live audience grant, which is returned.
 */
async function audienceGrant(deps: BrokerDeps, account: ServiceAccountRow, requested: string | undefined, now: Date): Promise<GrantRow | undefined> {
  if (requested === undefined || requested === deps.config.issuer || account.allowedAudiences.includes(requested)) {
    return undefined;
  }
  const found = await selectAudienceGrant(deps.db, account.id, requested, now);
  if ("grant" in found) {
    return found.grant;
  }
  const ended = found.outsideWindow.map((grant) => `${grant.id} (${grantStatus(grant, now)})`).join(", ");
  const detail = ended ? `; its grants for it are not valid now: ${ended}` : "";
  throw new OAuthError("invalid_target", `audience ${requested} is not allowed for service account ${account.id}${detail}`, "audience");
}

/**
 * Without a `scope` parameter the token carries every scope allowed: the audience
 * grant's scopes when it lists some, else the account's allowed scopes.
 */
function resolveScopes(account: ServiceAccountRow, grant: GrantRow | undefined, requested: string | undefined): string[] {
  const allowed = grant && grant.scopes.length > 0 ? grant.scopes : account.allowedScopes;
  if (requested === undefined) {
    return allowed;
  }
  const scopes = [...new Set(requested.split(" ").filter((scope) => scope.length > 0))];
  const refused = scopes.filter((scope) => !allowed.includes(scope));
  if (refused.length > 0) {
    throw new OAuthError("invalid_scope", `scope ${refused.join(" ")} is not allowed for service account ${account.id}`, "scope");
  }
  return scopes;
}

/** The smallest of the given TTLs and the time left until `maxExpiresAt`, in whole seconds. */
export function effectiveTtl(limits: (number | undefined)[], now: Date, maxExpiresAt: Date): number {
  const remaining = Math.floor((maxExpiresAt.getTime() - now.getTime()) / 1000);
  const ttl = Math.min(remaining, ...limits.filter((limit): limit is number => limit !== undefined));
  if (ttl < 1) {
    throw new OAuthError("invalid_grant", "no time is left before the service account or lease reaches its expiry", "no_ttl_left");
  }
  return ttl;
}
