import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../deps.js";
import { jsonBody, jsonResponse, Reason } from "../http/common-schemas.js";
import { requestContext } from "../http/request-context.js";
import { type BrokerApp, operatorRoute } from "../http/route-helpers.js";
import { resyncSecret } from "./resync-service.js";
import { SecretIdParams } from "./secret-schemas.js";

const ResyncResult = z
  .object({
    secret_id: z.string(),
    from_version: z.string().nullable(),
    to_version: z.string(),
    fingerprint: z.string().nullable().openapi({ description: "Fingerprint of the recorded version; null when nothing changed." }),
    changed: z.boolean().openapi({ description: "False when the broker's current version already was the upstream's latest." }),
  })
  .openapi("SecretResyncResult");

/** Registers POST /v1/secrets/{id}/resync: records the upstream's latest version as the current one. */
export function registerResyncRoute(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/secrets/{id}/resync",
      tags: ["secrets"],
      summary: "Record the upstream's latest version as the secret's current version",
      description:
        "For a static Vault secret that someone changed outside the broker: reads the KV version (or static-role password) Vault holds now and records it as the current version, with a fingerprint; the old current version becomes previous. Audited as `secret.resync`. A rotation in progress gives 409.",
      request: { params: SecretIdParams, body: { ...jsonBody(Reason), required: false } },
      responses: { 200: jsonResponse(ResyncResult, "The versions before and after") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { reason } = c.req.valid("json") ?? {};
      return c.json(await resyncSecret(deps, requestContext(c), id, reason ?? null), 200);
    },
  );
}
