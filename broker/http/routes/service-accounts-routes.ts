import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../../deps.js";
import { ServiceAccount, ServiceAccountCreate, ServiceAccountFilter, ServiceAccountUpdate } from "../../register/register-schemas.js";
import {
  changeServiceAccountStatus,
  createServiceAccount,
  findServiceAccount,
  listServiceAccounts,
  type StatusChange,
  toServiceAccountView,
  updateServiceAccount,
} from "../../register/service-accounts-service.js";
import { idParams, jsonBody, jsonResponse, PageQuery, pageOf, Reason } from "../common-schemas.js";
import { requestContext } from "../request-context.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../route-helpers.js";

const ServiceAccountPage = z
  .object({ items: z.array(ServiceAccount), next_cursor: z.string().nullable() })
  .openapi("ServiceAccountPage");
const AccountId = idParams("sa", "service account");

const STATUS_ROUTES: { change: StatusChange; summary: string }[] = [
  { change: "suspend", summary: "Suspend a service account: it can obtain no new credentials" },
  { change: "activate", summary: "Re-activate a suspended service account" },
  { change: "decommission", summary: "Decommission a service account for good" },
];

export function registerServiceAccountRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/service-accounts",
      tags: ["register"],
      summary: "Register a service account",
      request: { body: jsonBody(ServiceAccountCreate) },
      responses: { 201: jsonResponse(ServiceAccount, "The new service account; its id is also its OAuth client_id") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const view = await inAuditedTransaction(deps, c, (tx, record) => createServiceAccount(tx, deps.clock, record, input));
      return c.json(view, 201);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/service-accounts",
      tags: ["register"],
      summary: "List service accounts, with filters",
      request: { query: ServiceAccountFilter.extend(PageQuery) },
      responses: { 200: jsonResponse(ServiceAccountPage, "One page of service accounts, ordered by id") },
    }),
    async (c) => {
      const { limit, cursor, ...filter } = c.req.valid("query");
      const items = await listServiceAccounts(deps.db, deps.clock, filter, cursor, limit + 1);
      return c.json(pageOf(items, limit), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/service-accounts/{id}",
      tags: ["register"],
      summary: "Read a service account",
      request: { params: AccountId },
      responses: { 200: jsonResponse(ServiceAccount, "The service account") },
    }),
    async (c) => {
      const row = await findServiceAccount(deps.db, c.req.valid("param").id);
      return c.json(toServiceAccountView(row, deps.clock.now()), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "operator", {
      method: "patch",
      path: "/v1/service-accounts/{id}",
      tags: ["register"],
      summary: "Change a service account",
      request: { params: AccountId, body: jsonBody(ServiceAccountUpdate) },
      responses: { 200: jsonResponse(ServiceAccount, "The updated service account") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = c.req.valid("json");
      const view = await inAuditedTransaction(deps, c, (tx, record) => updateServiceAccount(tx, deps.clock, record, id, input));
      return c.json(view, 200);
    },
  );

  for (const { change, summary } of STATUS_ROUTES) {
    app.openapi(
      operatorRoute(deps, "operator", {
        method: "post",
        path: `/v1/service-accounts/{id}/${change}`,
        tags: ["register"],
        summary,
        request: { params: AccountId, body: { ...jsonBody(Reason), required: false } },
        responses: { 200: jsonResponse(ServiceAccount, "The service account in its new status") },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        const { reason } = c.req.valid("json") ?? {};
        const view = await inAuditedTransaction(deps, c, (tx, record) =>
          changeServiceAccountStatus(tx, deps.clock, record, id, change, reason, requestContext(c).actor),
        );
        return c.json(view, 200);
      },
    );
  }
}
