import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../../deps.js";
import { jsonBody, jsonResponse, PageQuery, pageOf, Reason } from "../../http/common-schemas.js";
import { requestContext } from "../../http/request-context.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../../http/route-helpers.js";
import { ExceptionCreate, ExceptionFilter, ExceptionIdParams, PolicyException } from "./exception-schemas.js";
import { createException, listExceptions, readException, revokeException } from "./exceptions-service.js";

const ExceptionPage = z.object({ items: z.array(PolicyException), next_cursor: z.string().nullable() }).openapi("PolicyExceptionPage");

export function registerExceptionRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/exceptions",
      tags: ["governance"],
      summary: "Record an accepted exception to a policy rule for one service account or secret",
      description: "While live, the exception suppresses the rule's findings for that record.",
      request: { body: jsonBody(ExceptionCreate) },
      responses: { 201: jsonResponse(PolicyException, "The new exception") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const actor = requestContext(c).actor;
      const created = await inAuditedTransaction(deps, c, (tx, record) => createException(tx, deps.clock.now(), record, input, actor));
      return c.json(created, 201);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/exceptions",
      tags: ["governance"],
      summary: "List exceptions, with filters such as status=expired",
      request: { query: ExceptionFilter.extend(PageQuery) },
      responses: { 200: jsonResponse(ExceptionPage, "One page of exceptions, ordered by id") },
    }),
    async (c) => {
      const { limit, cursor, ...filter } = c.req.valid("query");
      return c.json(pageOf(await listExceptions(deps.db, deps.clock.now(), filter, { cursor, limit: limit + 1 }), limit), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/exceptions/{id}",
      tags: ["governance"],
      summary: "Read an exception",
      request: { params: ExceptionIdParams },
      responses: { 200: jsonResponse(PolicyException, "The exception") },
    }),
    async (c) => c.json(await readException(deps.db, deps.clock.now(), c.req.valid("param").id), 200),
  );

  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/exceptions/{id}/revoke",
      tags: ["governance"],
      summary: "End an exception before it expires",
      request: { params: ExceptionIdParams, body: { ...jsonBody(Reason), required: false } },
      responses: { 200: jsonResponse(PolicyException, "The revoked exception") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { reason } = c.req.valid("json") ?? {};
      const actor = requestContext(c).actor;
      return c.json(await inAuditedTransaction(deps, c, (tx, record) => revokeException(tx, deps.clock.now(), record, id, actor, reason)), 200);
    },
  );
}
