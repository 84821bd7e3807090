import { z } from "@hono/zod-openapi";
import { and, asc, desc, eq, gt, type SQL } from "drizzle-orm";
import { rotations } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { NotFound } from "../errors.js";
import { idParams, idSchema, jsonBody, jsonResponse, PageQuery, pageOf } from "../http/common-schemas.js";
import { requestContext } from "../http/request-context.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../http/route-helpers.js";
import { SecretIdParams } from "../secrets/secret-schemas.js";
import { findSecret } from "../secrets/secrets-service.js";
import { startRotation } from "./rotation-start.js";
import { ROTATION_STATUSES, Rotation, type RotationRow, toRotationView } from "./rotation-types.js";

const RotateRequest = z
  .strictObject({
    reason: z.string().trim().min(1).max(1000).optional(),
    mode: z
      .enum(["normal", "compromise"])
      .default("normal")
      .openapi({ description: "compromise: also revoke every live lease of the older versions when the new one becomes current." }),
  })
  .openapi("RotateRequest");

const RotationPage = z.object({ items: z.array(Rotation), next_cursor: z.string().nullable() }).openapi("RotationPage");
const RotationFilter = z.strictObject({
  secret_id: idSchema("sec", "secret").optional(),
  status: z.enum(ROTATION_STATUSES).optional(),
});

export function registerRotationRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/secrets/{id}/rotate",
      tags: ["rotations"],
      summary: "Start a rotation of a secret now",
      description:
        "Answers 202 with the rotation, which the scheduler runs in the background: create pending, set, test, finish. A rotation already in progress for the secret gives 409 with its `rotation_id`. Follow it with GET /v1/rotations/{id}.",
      request: { params: SecretIdParams, body: { ...jsonBody(RotateRequest), required: false } },
      responses: { 202: jsonResponse(Rotation, "The rotation, in progress") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { reason, mode } = c.req.valid("json") ?? { mode: "normal" as const };
      const actor = requestContext(c).actor;
      const row = await inAuditedTransaction(deps, c, async (tx, record) =>
        startRotation(tx, deps.clock.now(), record, await findSecret(tx, id, true), {
          trigger: mode === "compromise" ? "compromise" : "manual",
          reason: reason ?? null,
          actor,
        }),
      );
      deps.kickRotations?.();
      return c.json(toRotationView(row), 202, { Location: `/v1/rotations/${row.id}` });
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/secrets/{id}/rotations",
      tags: ["rotations"],
      summary: "Rotation history of a secret, newest first",
      request: { params: SecretIdParams },
      responses: { 200: jsonResponse(z.object({ items: z.array(Rotation) }), "Every rotation of the secret, with its steps") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await findSecret(deps.db, id);
      const rows = await deps.db.select().from(rotations).where(eq(rotations.secretId, id)).orderBy(desc(rotations.createdAt));
      return c.json({ items: rows.map(toRotationView) }, 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/rotations",
      tags: ["rotations"],
      summary: "List rotations, with filters",
      request: { query: RotationFilter.extend(PageQuery) },
      responses: { 200: jsonResponse(RotationPage, "One page of rotations, ordered by id") },
    }),
    async (c) => {
      const { limit, cursor, ...filter } = c.req.valid("query");
      const conditions: (SQL | undefined)[] = [cursor ? gt(rotations.id, cursor) : undefined];
      if (filter.secret_id) conditions.push(eq(rotations.secretId, filter.secret_id));
      if (filter.status) conditions.push(eq(rotations.status, filter.status));
      const rows = await deps.db.select().from(rotations).where(and(...conditions)).orderBy(asc(rotations.id)).limit(limit + 1);
      return c.json(pageOf(rows.map(toRotationView), limit), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/rotations/{id}",
      tags: ["rotations"],
      summary: "Read a rotation and its steps",
      request: { params: idParams("rot", "rotation") },
      responses: { 200: jsonResponse(Rotation, "The rotation") },
    }),
    async (c) => c.json(toRotationView(await findRotation(deps, c.req.valid("param").id)), 200),
  );
}

async function findRotation(deps: BrokerDeps, id: string): Promise<RotationRow> {
  const [row] = await deps.db.select().from(rotations).where(eq(rotations.id, id));
  if (!row) {
    throw new NotFound("rotation", id);
  }
  return row;
}

