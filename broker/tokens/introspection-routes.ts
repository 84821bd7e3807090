import type { Context } from "hono";
import { authenticateOperatorToken, type Operator } from "../auth/operator-tokens.js";
import { type Role, roleAllows } from "../auth/roles.js";
import type { BrokerDeps } from "../deps.js";
import { bearerToken } from "../http/auth-middleware.js";
import { type AppEnv, requestContext } from "../http/request-context.js";
import type { BrokerApp } from "../http/route-helpers.js";
import { liveLeaseForJti } from "../http/workload-auth.js";
import { revokeLeases } from "../leases/lease-revocation.js";
import { revokingTransaction } from "../leases/revoking-transaction.js";
import { verifyOwnAccessToken } from "./access-token.js";
import { authenticateClientAssertion } from "./client-assertion.js";
import { OAuthError, parseOAuthForm, requireParam } from "./oauth-error.js";
import { refuse } from "./token-routes.js";

/** Caller of introspection or revocation: an operator, or a service account by client assertion. */
type OAuthCaller = { operator: Operator } | { serviceAccountId: string };

/** `POST /v1/introspect` (RFC 7662) and `POST /v1/revoke` (RFC 7009). */
export function registerIntrospectionRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.post("/v1/introspect", async function introspectionEndpoint(c) {
    try {
      const form = await parseOAuthForm(c);
      const caller = await authenticateCaller(deps, c, form, "auditor");
      const token = requireParam(form, "token");
      return c.json(await introspect(deps, caller, token), 200, { "Cache-Control": "no-store" });
    } catch (error) {
      return refuse(deps, c, error, "token.introspect");
    }
  });

  app.post("/v1/revoke", async function revocationEndpoint(c) {
    try {
      const form = await parseOAuthForm(c);
      const caller = await authenticateCaller(deps, c, form, "operator");
      const token = requireParam(form, "token");
      await revoke(deps, c, caller, token);
      return c.body(null, 200, { "Cache-Control": "no-store" });
    } catch (error) {
      return refuse(deps, c, error, "token.revoke");
    }
  });
}

/** An operator token in the Authorization header, or else a client assertion in the form. */
async function authenticateCaller(deps: BrokerDeps, c: Context<AppEnv>, form: Map<string, string>, role: Role): Promise<OAuthCaller> {
  const bearer = bearerToken(c);
  if (bearer) {
    const result = await authenticateOperatorToken(deps.db, deps.clock, bearer);
    if (!("operator" in result)) {
      throw new OAuthError("invalid_client", "the operator token is invalid, expired or revoked", `operator_${result.failure}`);
    }
    if (!roleAllows(result.operator.role, role)) {
      throw new OAuthError("unauthorized_client", `this endpoint needs the ${role} role`, "role");
    }
    c.set("operator", result.operator);
    return { operator: result.operator };
  }
  const client = await authenticateClientAssertion(deps, form);
  c.set("workload", { serviceAccountId: client.account.id, leaseId: "" });
  return { serviceAccountId: client.account.id };
}

/**
 * RFC 7662 section 2.2: an inactive, expired, superseded, revoked or foreign token is
 * `{"active": false}` and nothing more, so that the response reveals nothing about it.
 */
async function introspect(deps: BrokerDeps, caller: OAuthCaller, token: string): Promise<Record<string, unknown>> {
  const now = deps.clock.now();
  const payload = await verifyOwnAccessToken(deps.keyRing, token, { issuer: deps.config.issuer, now });
  if (!payload) {
    return { active: false };
  }
  const lease = await liveLeaseForJti(deps.db, payload.jti!, now);
  if (!lease || ("serviceAccountId" in caller && caller.serviceAccountId !== lease.serviceAccountId)) {
    return { active: false };
  }
  return {
    active: true,
    token_type: "Bearer",
    scope: payload["scope"],
    client_id: payload["client_id"],
    sub: payload.sub,
    aud: payload.aud,
    iss: payload.iss,
    exp: payload.exp,
    iat: payload.iat,
    nbf: payload.nbf,
    jti: payload.jti,
    lease_id: lease.id,
  };
}

/**
 * RFC 7009 section 2.2: an unknown or invalid token gets 200 as if revoked. A
 * service account may revoke only its own tokens (RFC 7009 section 2.1).
 */
async function revoke(deps: BrokerDeps, c: Context<AppEnv>, caller: OAuthCaller, token: string): Promise<void> {
  const now = deps.clock.now();
  const payload = await verifyOwnAccessToken(deps.keyRing, token, { issuer: deps.config.issuer, now });
  const lease = payload ? await liveLeaseForJti(deps.db, payload.jti!, now) : undefined;
  if (!lease) {
    return;
  }
  if ("serviceAccountId" in caller && caller.serviceAccountId !== lease.serviceAccountId) {
    throw new OAuthError("unauthorized_client", "the token was issued to another client; a client may revoke only its own tokens", "foreign_token");
  }
  const context = requestContext(c);
  await revokingTransaction(deps, context, (tx, record) =>
    revokeLeases(tx, now, record, { leaseId: lease.id }, context.actor, "revoked through the revocation endpoint"),
  );
}
