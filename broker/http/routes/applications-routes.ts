import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../../deps.js";
import {
  createApplication,
  getApplication,
  listApplications,
  updateApplication,
} from "../../register/applications-service.js";
import { Application, ApplicationCreate, ApplicationUpdate } from "../../register/register-schemas.js";
import { idParams, jsonBody, jsonResponse, PageQuery, pageOf } from "../common-schemas.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../route-helpers.js";

const ApplicationPage = z.object({ items: z.array(Application), next_cursor: z.string().nullable() }).openapi("ApplicationPage");
const ApplicationId = idParams("app", "application");

export function registerApplicationRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/applications",
      tags: ["register"],
      summary: "Register an application",
      request: { body: jsonBody(ApplicationCreate) },
      responses: { 201: jsonResponse(Application, "The new application") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const view = await inAuditedTransaction(deps, c, (tx, record) => createApplication(tx, deps.clock, record, input));
      return c.json(view, 201);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/applications",
      tags: ["register"],
      summary: "List applications",
      request: { query: z.strictObject(PageQuery) },
      responses: { 200: jsonResponse(ApplicationPage, "One page of applications, ordered by id") },
    }),
    async (c) => {
      const { limit, cursor } = c.req.valid("query");
      const items = await listApplications(deps.db, cursor, limit + 1);
      return c.json(pageOf(items, limit), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/applications/{id}",
      tags: ["register"],
      summary: "Read an application",
      request: { params: ApplicationId },
      responses: { 200: jsonResponse(Application, "The application") },
    }),
    async (c) => c.json(await getApplication(deps.db, c.req.valid("param").id), 200),
  );

  app.openapi(
    operatorRoute(deps, "operator", {
      method: "patch",
      path: "/v1/applications/{id}",
      tags: ["register"],
      summary: "Change an application's owners, criticality or regulated flag",
      request: { params: ApplicationId, body: jsonBody(ApplicationUpdate) },
      responses: { 200: jsonResponse(Application, "The updated application") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = c.req.valid("json");
      const view = await inAuditedTransaction(deps, c, (tx, record) => updateApplication(tx, deps.clock, record, id, input));
      return c.json(view, 200);
    },
  );
}
