import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../deps.js";
import { jsonBody, jsonResponse, PageQuery, pageOf, Reason } from "../http/common-schemas.js";
import { requestContext } from "../http/request-context.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../http/route-helpers.js";
import { Grant, GrantCreate, GrantFilter, GrantIdParams, GrantUpdate } from "./grant-schemas.js";
import { createGrant, listGrants, readGrant, revokeGrant, updateGrant } from "./grants-service.js";

const GrantPage = z.object({ items: z.array(Grant), next_cursor: z.string().nullable() }).openapi("GrantPage");

export function registerGrantRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/grants",
      tags: ["grants"],
      summary: "Allow a service account to obtain a secret, or an access token for an audience",
      request: { body: jsonBody(GrantCreate) },
      responses: { 201: jsonResponse(Grant, "The new grant") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const actor = requestContext(c).actor;
      return c.json(await inAuditedTransaction(deps, c, (tx, record) => createGrant(tx, deps.clock.now(), record, input, actor)), 201);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/grants",
      tags: ["grants"],
      summary: "List grants, with filters",
      request: { query: GrantFilter.extend(PageQuery) },
      responses: { 200: jsonResponse(GrantPage, "One page of grants, ordered by id") },
    }),
    async (c) => {
      const { limit, cursor, ...filter } = c.req.valid("query");
      return c.json(pageOf(await listGrants(deps.db, deps.clock.now(), filter, cursor, limit + 1), limit), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/grants/{id}",
      tags: ["grants"],
      summary: "Read a grant",
      request: { params: GrantIdParams },
      responses: { 200: jsonResponse(Grant, "The grant") },
    }),
    async (c) => c.json(await readGrant(deps.db, c.req.valid("param").id, deps.clock.now()), 200),
  );

  app.openapi(
    operatorRoute(deps, "operator", {
      method: "patch",
      path: "/v1/grants/{id}",
      tags: ["grants"],
      summary: "Change a grant's scopes, max TTL, end, approver or justification",
      description: "Moving not_after earlier shortens the grant's live leases to it.",
      request: { params: GrantIdParams, body: jsonBody(GrantUpdate) },
      responses: { 200: jsonResponse(Grant, "The updated grant") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = c.req.valid("json");
      return c.json(await inAuditedTransaction(deps, c, (tx, record) => updateGrant(tx, deps.clock.now(), record, id, input)), 200);
    },
  );

  for (const method of ["post", "delete"] as const) {
    app.openapi(
      operatorRoute(deps, "operator", {
        method,
        path: method === "post" ? "/v1/grants/{id}/revoke" : "/v1/grants/{id}",
        tags: ["grants"],
        summary: "Revoke a grant and every live lease issued under it",
        request: { params: GrantIdParams, body: { ...jsonBody(Reason), required: false } },
        responses: { 200: jsonResponse(Grant, "The revoked grant") },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        const { reason } = c.req.valid("json") ?? {};
        const actor = requestContext(c).actor;
        return c.json(await inAuditedTransaction(deps, c, (tx, record) => revokeGrant(tx, deps.clock.now(), record, id, actor, reason)), 200);
      },
    );
  }
}
