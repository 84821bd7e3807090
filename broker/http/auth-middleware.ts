import type { Context, MiddlewareHandler } from "hono";
import { recordAuditEvents } from "../audit/audit-writer.js";
import { authenticateOperatorToken } from "../auth/operator-tokens.js";
import { type Role, roleAllows } from "../auth/roles.js";
import type { BrokerDeps } from "../deps.js";
import { BrokerError } from "../errors.js";
import { type AppEnv, requestContext } from "./request-context.js";

const BEARER_PATTERN = /^Bearer ([^\s]+)$/i;

/** Returns the token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(c: Context): string | undefined {
  return BEARER_PATTERN.exec(c.req.header("authorization") ?? "")?.[1];
}

/**
 * Authenticates the operator token on every request it guards. A refused request writes
 * an audit event with the reason (never the token) and gets 401.
 */
export function authenticateOperator(deps: BrokerDeps): MiddlewareHandler<AppEnv> {
  return async function authenticateOperatorMiddleware(c, next) {
    const bearer = bearerToken(c);

    const result = bearer
      ? await authenticateOperatorToken(deps.db, deps.clock, bearer)
      : ({ failure: "missing" } as const);
    if ("operator" in result) {
      c.set("operator", result.operator);
      await next();
      return;
    }

    deps.metrics.authFailures.inc({ reason: result.failure });
    await recordAuditEvents(auditDeps(deps), requestContext(c), [
      {
        action: "auth.authenticate",
        outcome: "denied",
        target: "tokenId" in result ? (result.tokenId ?? null) : null,
        details: { reason: result.failure, method: c.req.method, path: c.req.path },
      },
    ]);
    throw new BrokerError("unauthenticated", unauthenticatedDetail(bearer));
  };
}

/** Three base64url parts: an access token or another JWT, never an operator token. */
const JWT_SHAPE = /^[\w-]+\.[\w-]+\.[\w-]*$/;

function unauthenticatedDetail(bearer: string | undefined): string {
  if (!bearer) {
    return "missing bearer token: send 'Authorization: Bearer <operator token>'";
  }
  if (JWT_SHAPE.test(bearer)) {
    return "this route takes an operator token, not a JWT: workload access tokens are accepted only on a workload's own lease routes";
  }
  return "the operator token is invalid, expired or revoked; ask an admin for a new one";
}

/** Refuses the request with 403, audited, unless the operator's role is at least `required`. */
export function requireRole(deps: BrokerDeps, required: Role): MiddlewareHandler<AppEnv> {
  return async function requireRoleMiddleware(c, next) {
    const operator = c.get("operator");
    if (operator && roleAllows(operator.role, required)) {
      await next();
      return;
    }

    await recordAuditEvents(auditDeps(deps), requestContext(c), [
      {
        action: "auth.authorize",
        outcome: "denied",
        target: null,
        details: { required_role: required, role: operator?.role ?? null, method: c.req.method, path: c.req.path },
      },
    ]);
    throw new BrokerError("forbidden", `this request needs the ${required} role; the token has the ${operator?.role ?? "no"} role`);
  };
}

/** Builds the dependencies of an audited transaction, whose commit counts the events and wakes the chainer. */
export function auditDeps(deps: Pick<BrokerDeps, "db" | "clock" | "metrics" | "auditChain">) {
  return {
    db: deps.db,
    clock: deps.clock,
    onAppended: (count: number) => {
      deps.metrics.auditEvents.inc(count);
      deps.auditChain.wake();
    },
  };
}
