import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../deps.js";
import { jsonBody, jsonResponse } from "../http/common-schemas.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../http/route-helpers.js";
import { MAX_KEY_PUBLISH_DELAY_SECONDS, rotateSigningKey } from "./key-rotation.js";
import type { SigningKeyStatus } from "./signing-key-ring.js";

const SigningKeyRotateRequest = z
  .strictObject({
    publish_delay: z
      .number()
      .int()
      .min(0)
      .max(MAX_KEY_PUBLISH_DELAY_SECONDS)
      .optional()
      .openapi({ description: "Seconds the new key is published in the JWKS before it signs. Defaults to BROKER_KEY_PUBLISH_DELAY." }),
  })
  .openapi("SigningKeyRotateRequest");

const SigningKey = z
  .object({
    kid: z.string(),
    alg: z.string(),
    created_at: z.string(),
    activates_at: z.string().openapi({ description: "When the key starts signing new tokens." }),
    state: z.enum(["pending", "active", "retired"]).openapi({
      description: "pending: published, not signing yet. active: signs new tokens. retired: superseded by a newer key.",
    }),
    published_until: z
      .string()
      .nullable()
      .openapi({ description: "For a retired key, when it leaves the JWKS: its successor's activation plus the token TTL cap and the clock skew." }),
  })
  .openapi("SigningKey");

const SigningKeyList = z.object({ items: z.array(SigningKey) }).openapi("SigningKeyList");

/** Rotation and listing of the broker's token signing keys; private keys never leave the key ring. */
export function registerSigningKeyRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "admin", {
      method: "post",
      path: "/v1/signing-keys/rotate",
      tags: ["signing-keys"],
      summary: "Add a signing key: published in the JWKS at once, signing after the publish delay",
      description:
        "Verifiers cache the JWKS (jose 6 and jwks-rsa 4 keep it 10 minutes by default), so a delay shorter than their cache " +
        "lets tokens signed by the new key reach verifiers that do not know it yet. Other broker replicas " +
        "reread the keys within 30 seconds.",
      request: { body: { ...jsonBody(SigningKeyRotateRequest), required: false } },
      responses: { 201: jsonResponse(SigningKey, "The new key") },
    }),
    async (c) => {
      const { publish_delay: publishDelay } = c.req.valid("json") ?? {};
      const rotated = await inAuditedTransaction(deps, c, (tx, record) =>
        rotateSigningKey(tx, deps.clock, record, deps.keyRing, deps.config, publishDelay),
      );
      // The ring dropped its cache when the key was added, which was before the commit.
      // A request in between may have cached the old rows again, so drop them once more.
      deps.keyRing.invalidate();
      deps.log.info({ kid: rotated.kid, activatesAt: rotated.activates_at, requestId: c.get("requestId") }, "signing key added");

      const added = (await deps.keyRing.keyStates()).find((key) => key.kid === rotated.kid)!;
      return c.json(toSigningKeyView(added), 201);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/signing-keys",
      tags: ["signing-keys"],
      summary: "List signing keys with their state, oldest activation first (never private keys)",
      request: { query: z.strictObject({}) },
      responses: { 200: jsonResponse(SigningKeyList, "Every signing key") },
    }),
    async (c) => {
      const keys = await deps.keyRing.keyStates({ fresh: true });
      return c.json({ items: keys.map(toSigningKeyView) }, 200);
    },
  );
}

function toSigningKeyView(key: SigningKeyStatus): z.infer<typeof SigningKey> {
  return {
    kid: key.kid,
    alg: key.alg,
    created_at: key.createdAt.toISOString(),
    activates_at: key.activatesAt.toISOString(),
    state: key.state,
    published_until: key.publishedUntil?.toISOString() ?? null,
  };
}
