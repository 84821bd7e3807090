import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../deps.js";
import { jsonResponse } from "../http/common-schemas.js";
import { type BrokerApp, operatorRoute } from "../http/route-helpers.js";
import { readUpstreamRotation } from "./external-rotation.js";
import { SecretIdParams } from "./secret-schemas.js";
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
