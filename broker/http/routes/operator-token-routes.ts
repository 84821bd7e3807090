import { z } from "@hono/zod-openapi";
import { createOperatorToken, listOperatorTokens, type OperatorTokenRow, revokeOperatorToken } from "../../auth/operator-tokens.js";
import { ROLES } from "../../auth/roles.js";
import type { BrokerDeps } from "../../deps.js";
import { ValidationFailed } from "../../errors.js";
import { idParams, jsonBody, jsonResponse, PageQuery, pageOf, Rfc3339 } from "../common-schemas.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../route-helpers.js";

const OperatorTokenCreate = z
  .strictObject({
    role: z.enum(ROLES),
    name: z.string().trim().min(1).max(128),
    expires_at: Rfc3339.optional(),
  })
  .openapi("OperatorTokenCreate");

const OperatorToken = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.enum(ROLES),
    created_at: z.string(),
    created_by: z.string(),
    expires_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
    revoked_by: z.string().nullable(),
  })
  .openapi("OperatorToken");

const CreatedOperatorToken = OperatorToken.extend({
  token: z.string().openapi({ description: "The bearer token. Shown only in this response; store it now." }),
}).openapi("CreatedOperatorToken");

const TokenId = idParams("tok", "operator token");

export function registerOperatorTokenRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "admin", {
      method: "post",
      path: "/v1/operator-tokens",
      tags: ["operators"],
      summary: "Create an operator token for the admin, operator or auditor role",
      request: { body: jsonBody(OperatorTokenCreate) },
      responses: { 201: jsonResponse(CreatedOperatorToken, "The token, shown once") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const expiresAt = input.expires_at ? new Date(input.expires_at) : null;
      if (expiresAt && expiresAt <= deps.clock.now()) {
        throw new ValidationFailed([{ name: "expires_at", reason: "must be in the future" }]);
      }
      const created = await inAuditedTransaction(deps, c, async (tx, record) => {
        const result = await createOperatorToken(tx, deps.clock, {
          role: input.role,
          name: input.name,
          expiresAt,
          createdBy: `operator:${c.get("operator").tokenId}`,
        });
        record({ action: "operator_token.create", target: result.row.id, details: { role: input.role, name: input.name } });
        return result;
      });
      return c.json({ ...toView(created.row), token: created.token }, 201);
    },
  );

  app.openapi(
    operatorRoute(deps, "admin", {
      method: "get",
      path: "/v1/operator-tokens",
      tags: ["operators"],
      summary: "List operator tokens (never their values)",
      request: { query: z.strictObject(PageQuery) },
      responses: { 200: jsonResponse(z.object({ items: z.array(OperatorToken), next_cursor: z.string().nullable() }), "One page of tokens") },
    }),
    async (c) => {
      const { limit, cursor } = c.req.valid("query");
      const rows = await listOperatorTokens(deps.db, cursor, limit + 1);
      return c.json(pageOf(rows.map(toView), limit), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "admin", {
      method: "post",
      path: "/v1/operator-tokens/{id}/revoke",
      tags: ["operators"],
      summary: "Revoke an operator token",
      request: { params: TokenId },
      responses: { 200: jsonResponse(OperatorToken, "The revoked token") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const row = await inAuditedTransaction(deps, c, async (tx, record) => {
        const revoked = await revokeOperatorToken(tx, deps.clock, id, `operator:${c.get("operator").tokenId}`);
        record({ action: "operator_token.revoke", target: id, details: { role: revoked.role } });
        return revoked;
      });
      return c.json(toView(row), 200);
    },
  );
}

function toView(row: OperatorTokenRow) {
  return {
    id: row.id,
    name: row.name,
    role: row.role as (typeof ROLES)[number],
    created_at: row.createdAt.toISOString(),
    created_by: row.createdBy,
    expires_at: row.expiresAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
    revoked_by: row.revokedBy,
  };
}
