import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../deps.js";
import { auditDeps } from "../http/auth-middleware.js";
import { jsonResponse } from "../http/common-schemas.js";
import { requestContext } from "../http/request-context.js";
import { type BrokerApp, operatorRoute } from "../http/route-helpers.js";
import { REWRAP_BATCH_SIZE } from "./master-key-rewrap.js";
import { type MasterKeyRotation, rotateMasterKey } from "./master-key-rotation.js";
import { masterKeyUsage } from "./master-key-usage.js";

const MasterKeySource = z.enum(["environment", "file"]).openapi({
  description: "environment: the keys come from BROKER_MASTER_KEY. file: from the key file in the data directory.",
});

const MasterKeyId = z.string().openapi({
  description: "First 16 hex characters of HMAC-SHA256(key, \"secrets-broker master key id\"); identifies a key without revealing it.",
  example: "3f9a0c1d2e4b5a69",
});

const RewrapCount = z.object({
  master_key_id: MasterKeyId,
  data_keys: z.number().int(),
  signing_keys: z.number().int(),
});

const MasterKeyRotationView = z
  .object({
    source: MasterKeySource,
    current_key_id: MasterKeyId,
    generated_key: z.boolean().openapi({ description: "True when the broker generated the new key (file mode)." }),
    rewrapped: z.array(RewrapCount).openapi({ description: "Stored keys moved off each older master key." }),
    key_ids_in_use: z
      .array(MasterKeyId.nullable())
      .openapi({ description: "Master keys that still wrap a stored key; null stands for a key that none of the loaded keys matches." }),
    retired_key_ids: z.array(MasterKeyId).openapi({
      description:
        "Older keys that no longer wrap anything. With BROKER_MASTER_KEY, remove them from the variable at the next restart; " +
        "in file mode they have been removed from the key file.",
    }),
  })
  .openapi("MasterKeyRotation");

const MasterKeyStatus = z
  .object({
    source: MasterKeySource,
    current_key_id: MasterKeyId,
    key_ids: z.array(MasterKeyId).openapi({ description: "Ids of the keys this broker process loaded, current first." }),
    usage: z.array(
      z.object({
        master_key_id: MasterKeyId.nullable(),
        current: z.boolean(),
        loaded: z.boolean().openapi({ description: "Whether this broker process loaded the key, from BROKER_MASTER_KEY or the key file." }),
        data_keys: z.number().int(),
        signing_keys: z.number().int(),
      }),
    ),
  })
  .openapi("MasterKeyStatus");

const ROTATION_PROCEDURE =
  `Re-wraps every data key and signing key that the current master key did not wrap, in batches of ${REWRAP_BATCH_SIZE}, one ` +
  "`master_key.rewrap` audit event per batch. Values sealed under data keys are not re-encrypted, and the service keeps running.\n\n" +
  "With BROKER_MASTER_KEY: generate a key (`openssl rand -base64 32`), set BROKER_MASTER_KEY to `new,old`, restart the replicas " +
  "one at a time (each can still open what the old key wrapped), call this once every replica runs with the new list, and remove " +
  "the keys listed in `retired_key_ids` at the next restart. Until every replica has restarted, replicas still on the old list " +
  "cannot open keys wrapped under the new key, so do not rotate signing keys during the restart.\n\n" +
  "In file mode (no BROKER_MASTER_KEY): the broker generates the new key, writes the key file with the new key first and the old " +
  "one second (a temporary file with mode 0600, then a rename), switches to the new key, re-wraps, then rewrites the file with the " +
  "new key only.";

/** Master-key rotation and status; key material never leaves the process. */
export function registerMasterKeyRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "admin", {
      method: "post",
      path: "/v1/sys/master-key/rotate",
      tags: ["master-key"],
      summary: "Re-wrap every stored key under the current master key; in file mode, generate that key first",
      description: ROTATION_PROCEDURE,
      responses: { 200: jsonResponse(MasterKeyRotationView, "What the rotation did") },
    }),
    async (c) => {
      const rotation = await rotateMasterKey(
        { ...auditDeps(deps), masterKeys: deps.masterKeys, keyRing: deps.keyRing, log: deps.log },
        requestContext(c),
      );
      return c.json(toRotationView(rotation), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "admin", {
      method: "get",
      path: "/v1/sys/master-key",
      tags: ["master-key"],
      summary: "Show the current master key id, where the keys come from, and how many stored keys each master key wraps",
      request: { query: z.strictObject({}) },
      responses: { 200: jsonResponse(MasterKeyStatus, "Master key ids and usage; never key material") },
    }),
    async (c) => {
      const usage = await masterKeyUsage(deps.db, deps.masterKeys);
      return c.json(
        {
          source: deps.masterKeys.source,
          current_key_id: deps.masterKeys.currentKeyId,
          key_ids: deps.masterKeys.keyIds,
          usage: usage.map((entry) => ({
            master_key_id: entry.masterKeyId,
            current: entry.current,
            loaded: entry.loaded,
            data_keys: entry.dataKeys,
            signing_keys: entry.signingKeys,
          })),
        },
        200,
      );
    },
  );
}

function toRotationView(rotation: MasterKeyRotation): z.infer<typeof MasterKeyRotationView> {
  return {
    source: rotation.source,
    current_key_id: rotation.currentKeyId,
    generated_key: rotation.generatedKey,
    rewrapped: rotation.rewrapped.map((count) => ({ master_key_id: count.masterKeyId, data_keys: count.dataKeys, signing_keys: count.signingKeys })),
    key_ids_in_use: rotation.keyIdsInUse,
    retired_key_ids: rotation.retiredKeyIds,
  };
}
