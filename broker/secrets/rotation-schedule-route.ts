import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../deps.js";
import { NotFound } from "../errors.js";
import { jsonBody, jsonResponse, Reason } from "../http/common-schemas.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../http/route-helpers.js";
import { readUpstreamRotation, recordExternalRotation } from "./external-rotation.js";
import { Secret, SecretIdParams } from "./secret-schemas.js";
import { findSecret } from "./secrets-service.js";

const RotationSchedule = z
  .object({
    broker: z.object({
      rotation: z.record(z.string(), z.unknown()).nullable(),
      next_rotation_at: z.string().nullable(),
      last_rotated_at: z.string().nullable(),
    }),
    upstream: z
      .object({
        enabled: z.boolean(),
        rotator: z.string().nullable(),
        schedule: z.string().nullable(),
        window: z.string().nullable(),
        last_rotated_at: z.string().nullable(),
        next_rotation_at: z.string().nullable(),
      })
      .nullable()
      .openapi({ description: "The upstream's own rotation, read now (AWS DescribeSecret RotationRules); null for adapters without one." }),
    external_rotation: z.record(z.string(), z.unknown()).nullable(),
  })
  .openapi("RotationSchedule");

/** Registers GET /v1/secrets/{id}/rotation-schedule: the broker's rotation policy beside the upstream's own rotation. */
export function registerRotationScheduleRoute(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/secrets/{id}/rotation-schedule",
      tags: ["secrets"],
      summary: "Show the broker's rotation policy beside the upstream's own rotation schedule",
      request: { params: SecretIdParams },
      responses: { 200: jsonResponse(RotationSchedule, "Both schedules; the upstream one is read from the upstream now") },
    }),
    async (c) => {
      const row = await findSecret(deps.db, c.req.valid("param").id);
      const upstream = await readUpstreamRotation(deps, row);
      return c.json(
        {
          broker: {
            rotation: (row.rotation as Record<string, unknown> | null) ?? null,
            next_rotation_at: row.nextRotationAt?.toISOString() ?? null,
            last_rotated_at: row.lastRotatedAt?.toISOString() ?? null,
          },
          upstream: upstream && {
            enabled: upstream.enabled,
            rotator: upstream.rotator,
            schedule: upstream.schedule,
            window: upstream.window,
            last_rotated_at: upstream.lastRotatedAt?.toISOString() ?? null,
            next_rotation_at: upstream.nextRotationAt?.toISOString() ?? null,
          },
          external_rotation: (row.externalRotation as Record<string, unknown> | null) ?? null,
        },
        200,
      );
    },
  );
}

/**
 * Registers POST /v1/secrets/{id}/external-rotation/refresh: reads the upstream's own
 * rotation again and sets or clears the secret's `external_rotation` mark. A secret whose
 * adapter has no upstream rotation to read is left unmarked.
 */
export function registerExternalRotationRefreshRoute(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/secrets/{id}/external-rotation/refresh",
      tags: ["secrets"],
      summary: "Read the upstream's own rotation again and set or clear the secret's external_rotation mark",
      description:
        "Clears the mark of a secret whose upstream rotation was turned off, so that the broker's rotation policy applies again, and marks a secret that the upstream now rotates. Audited as secret.external_rotation_refresh.",
      request: { params: SecretIdParams, body: { ...jsonBody(Reason), required: false } },
      responses: { 200: jsonResponse(Secret, "The secret, with external_rotation as the upstream reports it now") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const row = await findSecret(deps.db, id);
      if (row.deletedAt) {
        throw new NotFound("secret", id);
      }
      const { reason } = c.req.valid("json") ?? {};
      const upstream = await readUpstreamRotation(deps, row);
      const refreshed = await inAuditedTransaction(deps, c, async (tx, record) =>
        recordExternalRotation(deps, tx, record, await findSecret(tx, id, true), upstream, reason ?? null),
      );
      return c.json(refreshed, 200);
    },
  );
}
