import { eq } from "drizzle-orm";
import type { MiddlewareHandler } from "hono";
import { recordAuditEvents } from "../audit/audit-writer.js";
import { authenticateOperatorToken } from "../auth/operator-tokens.js";
import { type Role, roleAllows } from "../auth/roles.js";
import type { Db } from "../db/database.js";
import { leases } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { BrokerError } from "../errors.js";
import { leaseStatus } from "../leases/lease-types.js";
import { verifyOwnAccessToken } from "../tokens/access-token.js";
import { auditDeps, bearerToken } from "./auth-middleware.js";
import { type AppEnv, requestContext, type Workload } from "./request-context.js";

const OPERATOR_TOKEN_PREFIX = "sbo_";

/**
 * Paths where a workload may call with its own access token instead of an operator
 * token, and the OAuth endpoints, which authenticate from the form body.
 */
export const WORKLOAD_PATHS = [/^\/v1\/(token|introspect|revoke|credentials)$/, /^\/v1\/leases\/[^/]+\/(renew|revoke)$/];

export function isWorkloadPath(path: string): boolean {
  return WORKLOAD_PATHS.some((pattern) => pattern.test(path));
}

/**
 * Returns the workload behind a live access token the broker issued for its own
 * audience, or undefined when the token is invalid, expired, superseded or revoked.
 */
export async function authenticateAccessToken(deps: BrokerDeps, token: string): Promise<Workload | undefined> {
  const payload = await verifyOwnAccessToken(deps.keyRing, token, {
    issuer: deps.config.issuer,
    audience: deps.config.issuer,
    now: deps.clock.now(),
  });
  if (!payload) {
    return undefined;
  }
  const lease = await liveLeaseForJti(deps.db, payload.jti!, deps.clock.now());
  return lease ? { serviceAccountId: lease.serviceAccountId, leaseId: lease.id, lease } : undefined;
}

export async function liveLeaseForJti(db: Db, jti: string, now: Date) {
  const [lease] = await db.select().from(leases).where(eq(leases.tokenJti, jti));
  return lease && leaseStatus(lease, now) === "active" ? lease : undefined;
}

/** Accepts an operator token or a workload's access token; a rejected request is audited and gets 401. */
export function authenticateOperatorOrWorkload(deps: BrokerDeps): MiddlewareHandler<AppEnv> {
  return async function authenticateOperatorOrWorkloadMiddleware(c, next) {
    const bearer = bearerToken(c);
    if (bearer?.startsWith(OPERATOR_TOKEN_PREFIX)) {
      const result = await authenticateOperatorToken(deps.db, deps.clock, bearer);
      if ("operator" in result) {
        c.set("operator", result.operator);
        return next();
      }
    } else if (bearer) {
      const workload = await authenticateAccessToken(deps, bearer);
      if (workload) {
        c.set("workload", workload);
        return next();
      }
    }

    deps.metrics.authFailures.inc({ reason: bearer ? "invalid" : "missing" });
    await recordAuditEvents(auditDeps(deps), requestContext(c), [
      { action: "auth.authenticate", outcome: "denied", details: { reason: bearer ? "invalid" : "missing", method: c.req.method, path: c.req.path } },
    ]);
    throw new BrokerError(
      "unauthenticated",
      "send an operator token, or a live access token this broker issued for its own audience (request it without an audience parameter): 'Authorization: Bearer <token>'",
    );
  };
}

/** Authenticates an operator or a workload, then requires `role` of an operator; a workload's ownership is the handler's check. */
export function operatorRoleOrWorkload(deps: BrokerDeps, role: Role): MiddlewareHandler<AppEnv> {
  const authenticate = authenticateOperatorOrWorkload(deps);
  return async function operatorRoleOrWorkloadMiddleware(c, next) {
    await authenticate(c, async () => undefined);
    const operator = c.get("operator");
    if (c.get("workload") || (operator && roleAllows(operator.role, role))) {
      return next();
    }
    await recordAuditEvents(auditDeps(deps), requestContext(c), [
      { action: "auth.authorize", outcome: "denied", details: { required_role: role, role: operator?.role ?? null, method: c.req.method, path: c.req.path } },
    ]);
    throw new BrokerError("forbidden", `this request needs the ${role} role; the token has the ${operator?.role ?? "no"} role`);
  };
}

/**
 * Accepts only a workload's live access token. An operator token gets 403: credentials
 * are issued to service accounts, never to people.
 */
export function requireWorkload(deps: BrokerDeps): MiddlewareHandler<AppEnv> {
  return async function requireWorkloadMiddleware(c, next) {
    const bearer = bearerToken(c);
    const workload = bearer && !bearer.startsWith(OPERATOR_TOKEN_PREFIX) ? await authenticateAccessToken(deps, bearer) : undefined;
    if (workload) {
      c.set("workload", workload);
      return next();
    }

    const reason = !bearer ? "missing" : bearer.startsWith(OPERATOR_TOKEN_PREFIX) ? "operator_token" : "invalid";
    deps.metrics.authFailures.inc({ reason });
    await recordAuditEvents(auditDeps(deps), requestContext(c), [
      { action: "auth.authenticate", outcome: "denied", details: { reason, method: c.req.method, path: c.req.path } },
    ]);
    if (reason === "operator_token") {
      throw new BrokerError("forbidden", "credentials are issued to workloads: send the access token of a service account (POST /v1/token), not an operator token");
    }
    throw new BrokerError(
      "unauthenticated",
      "send a live access token this broker issued for its own audience (request it without an audience parameter): 'Authorization: Bearer <token>'",
    );
  };
}
