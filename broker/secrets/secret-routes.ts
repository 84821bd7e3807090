import { z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { secretVersions, secrets } from "../db/schema.js";
import { recordAuditEvents } from "../audit/audit-writer.js";
import type { BrokerDeps } from "../deps.js";
import { auditDeps } from "../http/auth-middleware.js";
import { jsonBody, jsonResponse, PageQuery, pageOf, Reason } from "../http/common-schemas.js";
import { requestContext } from "../http/request-context.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../http/route-helpers.js";
import { fingerprintOf, toSecretData } from "./fingerprint.js";
import {
  FingerprintMatch,
  FingerprintRequest,
  Secret,
  SecretCreate,
  SecretFilter,
  SecretIdParams,
  SecretUpdate,
  SecretVersion,
} from "./secret-schemas.js";
import { registerRotationScheduleRoute } from "./rotation-schedule-route.js";
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
      return c.json(await inAuditedTransaction(deps, c, (tx, record) => deleteSecret(deps, tx, record, id, actor, reason)), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/secrets/fingerprint",
      tags: ["secrets"],
      summary: "Fingerprint a value, e.g. a leaked one, and list the versions that had it",
      description: "The value is used for the keyed fingerprint and is neither stored nor logged.",
      request: { body: jsonBody(FingerprintRequest) },
      responses: { 200: jsonResponse(FingerprintMatch, "The fingerprint and the versions that match it") },
    }),
    async (c) => {
      const fingerprint = fingerprintOf(await deps.dataKeys.fingerprintKey(), toSecretData(c.req.valid("json").value));
      const matches = await deps.db
        .select({ secret_id: secretVersions.secretId, name: secrets.name, version: secretVersions.version, stage: secretVersions.stage })
        .from(secretVersions)
        .innerJoin(secrets, eq(secrets.id, secretVersions.secretId))
        .where(and(eq(secretVersions.fingerprint, fingerprint)));
      await recordAuditEvents(auditDeps(deps), requestContext(c), [
        { action: "secret.fingerprint_lookup", details: { fingerprint, matches: matches.map((row) => `${row.secret_id}@${row.version}`) } },
      ]);
      return c.json({ fingerprint, matches: matches.map((row) => ({ ...row, stage: row.stage as z.infer<typeof SecretVersion>["stage"] })) }, 200);
    },
  );
}
