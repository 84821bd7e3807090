import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { auditedTransaction, type RecordAudit } from "../audit/audit-writer.js";
import type { Role } from "../auth/roles.js";
import type { Tx } from "../db/database.js";
import type { BrokerDeps } from "../deps.js";
import { auditDeps, requireRole } from "./auth-middleware.js";
import { ERROR_RESPONSES } from "./common-schemas.js";
import { type AppEnv, requestContext } from "./request-context.js";

export type BrokerApp = OpenAPIHono<AppEnv>;

type RouteConfig = Parameters<typeof createRoute>[0];

/**
 * Declares an operator route: the role it needs (checked before validation, so that a
 * refused caller learns nothing about the body), the bearer security scheme and the
 * common error responses in the OpenAPI document.
 */
export function operatorRoute<const R extends Omit<RouteConfig, "middleware" | "security">>(
  deps: BrokerDeps,
  role: Role,
  config: R,
) {
  return createRoute({
    ...config,
    security: [{ operatorToken: [] }],
    middleware: [requireRole(deps, role)] as const,
    responses: { ...ERROR_RESPONSES, ...config.responses },
    description: `${config.description ?? ""}\n\nRequires the ${role} role or higher.`.trim(),
  });
}

/** Runs a change and its audit events in one transaction, attributed to the caller. */
export function inAuditedTransaction<T>(
  deps: BrokerDeps,
  c: Context<AppEnv>,
  work: (tx: Tx, record: RecordAudit) => Promise<T>,
): Promise<T> {
  return auditedTransaction(auditDeps(deps), requestContext(c), work);
}
