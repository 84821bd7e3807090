import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../deps.js";
import { jsonBody, jsonResponse, PageQuery, pageOf, Reason } from "../http/common-schemas.js";
import { requestContext } from "../http/request-context.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../http/route-helpers.js";
import {
  Secret,
  SecretCreate,
  SecretFilter,
  SecretIdParams,
  SecretUpdate,
  SecretVersion,
} from "./secret-schemas.js";
import { registerResyncRoute } from "./resync-route.js";
import { registerExternalRotationRefreshRoute, registerRotationScheduleRoute } from "./rotation-schedule-route.js";
import { toSecretView, toVersionView } from "./secret-views.js";
import { createSecret, deleteSecret, findSecret, listSecrets, listVersions, updateSecret } from "./secrets-service.js";

const SecretPage = z.object({ items: z.array(Secret), next_cursor: z.string().nullable() }).openapi("SecretPage");
const VersionList = z.object({ items: z.array(SecretVersion) }).openapi("SecretVersionList");

export function registerSecretRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/secrets",
      tags: ["secrets"],
      summary: "Add a secret to the catalogue",
      description:
        'A local static secret needs its first value: `generate` (e.g. `{"length": 32}`) or `value`. Other adapters take their settings under `settings`. No answer ever contains a value.',
      request: { body: jsonBody(SecretCreate) },
      responses: { 201: jsonResponse(Secret, "The new secret, with its current version") },
    }),
    async (c) => c.json(await createSecret(deps, requestContext(c), c.req.valid("json")), 201),
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/secrets",
      tags: ["secrets"],
      summary: "List secrets, with filters",
      request: { query: SecretFilter.extend(PageQuery) },
      responses: { 200: jsonResponse(SecretPage, "One page of secrets, ordered by id; never a value") },
    }),
    async (c) => {
      const { limit, cursor, ...filter } = c.req.valid("query");
      return c.json(pageOf(await listSecrets(deps.db, filter, cursor, limit + 1), limit), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/secrets/{id}",
      tags: ["secrets"],
      summary: "Read a secret (never its value)",
      request: { params: SecretIdParams },
      responses: { 200: jsonResponse(Secret, "The secret") },
    }),
    async (c) => c.json(toSecretView(await findSecret(deps.db, c.req.valid("param").id)), 200),
  );

  registerRotationScheduleRoute(app, deps);
  registerExternalRotationRefreshRoute(app, deps);
  registerResyncRoute(app, deps);

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/secrets/{id}/versions",
      tags: ["secrets"],
      summary: "List a secret's versions with their stages and fingerprints",
      request: { params: SecretIdParams },
      responses: { 200: jsonResponse(VersionList, "Versions, newest first; never a value") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await findSecret(deps.db, id);
      return c.json({ items: (await listVersions(deps.db, id)).map(toVersionView) }, 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "operator", {
      method: "patch",
      path: "/v1/secrets/{id}",
      tags: ["secrets"],
      summary: "Change a secret's owner, settings, TTLs, generation or rotation policy",
      request: { params: SecretIdParams, body: jsonBody(SecretUpdate) },
      responses: { 200: jsonResponse(Secret, "The updated secret") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = c.req.valid("json");
      return c.json(await inAuditedTransaction(deps, c, (tx, record) => updateSecret(deps, tx, record, id, input)), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "operator", {
      method: "delete",
      path: "/v1/secrets/{id}",
      tags: ["secrets"],
      summary: "Delete a secret: revokes its grants and live leases; it stays listed for lineage",
      request: { params: SecretIdParams, body: { ...jsonBody(Reason), required: false } },
      responses: { 200: jsonResponse(Secret, "The deleted secret") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { reason } = c.req.valid("json") ?? {};
      const actor = requestContext(c).actor;
      const deleted = await inAuditedTransaction(deps, c, (tx, record) => deleteSecret(deps, tx, record, id, actor, reason), { allLeasesOfSecret: id });
      return c.json(deleted, 200);
    },
  );
}
