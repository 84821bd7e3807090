import { and, eq } from "drizzle-orm";
import type { RecordAudit } from "../audit/audit-writer.js";
import type { Executor } from "../db/database.js";
import { newId } from "../db/ids.js";
import { rotations, secrets } from "../db/schema.js";
import { Conflict, InvalidState, NotFound } from "../errors.js";
import { rotatedUpstreamReason } from "../secrets/external-rotation.js";
import type { SecretRow } from "../secrets/secret-views.js";
import { LOCAL_ADAPTER } from "../secrets/secrets-service.js";
import type { RotationRow, RotationTrigger } from "./rotation-types.js";

/** A rotation to start: what triggered it, why, and who asked. */
export interface RotationRequest {
  trigger: RotationTrigger;
  reason: string | null;
  actor: string;
}

/**
 * Records a new rotation of `secret` in `tx`, unclaimed, so that the next scheduler
 * tick of any process runs it. Throws `Conflict` naming the rotation already in
 * progress for the secret, and `InvalidState` for a secret that cannot rotate.
 */
export async function startRotation(tx: Executor, now: Date, record: RecordAudit, secret: SecretRow, request: RotationRequest): Promise<RotationRow> {
  ensureRotatable(secret);
  const [running] = await tx
    .select({ id: rotations.id })
    .from(rotations)
    .where(and(eq(rotations.secretId, secret.id), eq(rotations.status, "in_progress")));
  if (running) {
    throw new RotationInProgress(secret.id, running.id);
  }

  const [row] = await tx
    .insert(rotations)
    .values({
      id: newId("rot"),
      secretId: secret.id,
      trigger: request.trigger,
      reason: request.reason,
      actor: request.actor,
      status: "in_progress",
      steps: [],
      fromVersion: secret.currentVersion,
      createdAt: now,
      updatedAt: now,
    })
    .onConflictDoNothing()
    .returning();
  if (!row) {
    throw new RotationInProgress(secret.id, "(started concurrently)");
  }
  // The scheduler sets the next time when this rotation ends, completed or rolled back.
  await tx.update(secrets).set({ nextRotationAt: null }).where(eq(secrets.id, secret.id));
  record({ action: "rotation.start", target: row.id, details: { secret_id: secret.id, trigger: request.trigger, reason: request.reason, from_version: secret.currentVersion } });
  return row;
}

/** A rotation of the secret is already in progress; its id is on the error, for the 409 response. */
export class RotationInProgress extends Conflict {
  override name = "RotationInProgress";

  constructor(
    secretId: string,
    readonly rotationId: string,
  ) {
    super(`secret ${secretId} has rotation ${rotationId} in progress; wait for it (GET /v1/rotations/${rotationId}) before starting another`);
    this.extensions = { rotation_id: rotationId };
  }
}

function ensureRotatable(secret: SecretRow): void {
  if (secret.deletedAt) {
    throw new NotFound("secret", secret.id);
  }
  if (secret.kind !== "static") {
    throw new InvalidState(`secret ${secret.id} is dynamic: each lease gets its own credential, so revoke leases instead of rotating`);
  }
  if (secret.externalRotation) {
    throw new InvalidState(`secret ${secret.id}: ${rotatedUpstreamReason(secret.externalRotation)}`);
  }
  if (!secret.currentVersion) {
    throw new InvalidState(`secret ${secret.id} has no current version to rotate from`);
  }
  if (secret.adapter === LOCAL_ADAPTER && !secret.generate) {
    throw new InvalidState(
      `secret ${secret.id} has no generate policy, so a rotation cannot make a new value; set one with PATCH /v1/secrets/${secret.id} ` +
        '{"generate": {"length": 32, "field": "<the field the value is in>"}}',
    );
  }
}
