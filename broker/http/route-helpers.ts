import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { RecordAudit } from "../audit/audit-writer.js";
import type { Role } from "../auth/roles.js";
import type { Tx } from "../db/database.js";
import type { BrokerDeps } from "../deps.js";
import { type RevokingOptions, revokingTransaction } from "../leases/revoking-transaction.js";
import { requireRole } from "./auth-middleware.js";
import { ERROR_RESPONSES } from "./common-schemas.js";
import { type AppEnv, requestContext } from "./request-context.js";
import { operatorRoleOrWorkload } from "./workload-auth.js";

export type BrokerApp = OpenAPIHono<AppEnv>;

type RouteConfig = Parameters<typeof createRoute>[0];

/**
 * Body of a route that changes state but takes no fields: none, or `{}`. Declaring it makes
 * invalid JSON and unknown fields a 400 instead of being ignored while the change goes ahead.
 */
const EMPTY_BODY = { content: { "application/json": { schema: z.strictObject({}) } }, required: false };

/**
 * Declares an operator route: the role it needs (checked before validation, so that a
 * refused caller learns nothing about the body), the bearer security scheme and the
 * common error responses in the OpenAPI document.
 */
export function operatorRoute<const R extends Omit<RouteConfig, "middleware" | "security">>(
  deps: BrokerDeps,
  role: Role,
  config: R,
  options: { allowWorkload?: boolean } = {},
) {
  const takesNoBody = config.method !== "get" && config.request?.body === undefined;
  const who = options.allowWorkload
    ? `Requires the ${role} role or higher, or the access token of the workload that holds the lease.`
    : `Requires the ${role} role or higher.`;
  const security: Record<string, string[]>[] = options.allowWorkload ? [{ operatorToken: [] }, { accessToken: [] }] : [{ operatorToken: [] }];
  const authorize = options.allowWorkload ? operatorRoleOrWorkload(deps, role) : requireRole(deps, role);
  return createRoute({
    ...config,
    request: takesNoBody ? { ...config.request, body: EMPTY_BODY } : config.request,
    security,
    middleware: [authorize] as const,
    responses: { ...ERROR_RESPONSES, ...config.responses },
    description: `${config.description ?? ""}\n\n${who}`.trim(),
  });
}

/**
 * Runs a change and its audit events in one transaction, attributed to the caller; then
 * revokes upstream the credentials of any lease the change revoked.
 */
export async function inAuditedTransaction<T>(
  deps: BrokerDeps,
  c: Context<AppEnv>,
  work: (tx: Tx, record: RecordAudit) => Promise<T>,
  options: RevokingOptions = {},
): Promise<T> {
  const { result } = await revokingTransaction(deps, requestContext(c), work, options);
  return result;
}
