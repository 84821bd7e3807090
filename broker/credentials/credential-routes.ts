import { createRoute, z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../deps.js";
import { ERROR_RESPONSES, jsonBody, jsonResponse } from "../http/common-schemas.js";
import { requestContext } from "../http/request-context.js";
import type { BrokerApp } from "../http/route-helpers.js";
import { requireWorkload } from "../http/workload-auth.js";
import { MAX_SECRET_TTL_SECONDS, MIN_SECRET_TTL_SECONDS, SecretName } from "../secrets/secret-schemas.js";
import { issueCredential } from "./credential-service.js";

const CredentialRequest = z
  .strictObject({
    secret: SecretName.openapi({ description: "Name of the secret." }),
    ttl: z
      .number()
      .int()
      .min(MIN_SECRET_TTL_SECONDS)
      .max(MAX_SECRET_TTL_SECONDS)
      .optional()
      .openapi({ description: "Requested lease duration in seconds; capped by the secret, the grant and the account. Defaults to the secret's default TTL." }),
  })
  .openapi("CredentialRequest");

const CredentialResponse = z
  .object({
    lease_id: z.string(),
    lease_duration: z.number().int().openapi({ description: "Seconds until the lease expires unless renewed." }),
    renewable: z.boolean(),
    data: z.record(z.string(), z.string()).openapi({ description: "The credential: e.g. `value`, or `username` and `password`." }),
    version: z.string().nullable().openapi({ description: "The secret version handed out; null for a dynamic credential." }),
    expires_at: z.string(),
    warnings: z.array(z.string()).openapi({ description: "Set when the requested ttl was capped." }),
  })
  .openapi("CredentialResponse");

export function registerCredentialRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/credentials",
      tags: ["credentials"],
      summary: "Obtain a leased credential for a secret",
      description:
        "Requires the access token of a service account with a grant for the secret. The lease is a child of the token's lease: revoking the token revokes it. Renew and revoke it with /v1/leases/{id}/renew and /v1/leases/{id}/revoke.",
      security: [{ accessToken: [] }],
      middleware: [requireWorkload(deps)] as const,
      request: { body: jsonBody(CredentialRequest) },
      responses: { ...ERROR_RESPONSES, 200: jsonResponse(CredentialResponse, "The credential and its lease") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const response = await issueCredential(deps, requestContext(c), c.get("workload"), { secret: input.secret, ttl: input.ttl });
      return c.json(response, 200, { "Cache-Control": "no-store" });
    },
  );
}
