import { eq } from "drizzle-orm";
import type { UpstreamRotation } from "../../adapters/contract.js";
import type { RecordAudit } from "../audit/audit-writer.js";
import type { Executor } from "../db/database.js";
import { type ExternalRotation, secrets } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { nextRotationAt } from "../rotation/rotation-policy.js";
import { localSecretReader } from "./local-secret-reader.js";
import type { SecretView } from "./secret-schemas.js";
import { type SecretRow, toSecretRef, toSecretView } from "./secret-views.js";

/**
 * Reads the upstream's own rotation configuration of a secret, or returns null when its
 * adapter has none to read. Runs outside any transaction, as every adapter call does.
 */
export async function readUpstreamRotation(deps: BrokerDeps, row: SecretRow): Promise<UpstreamRotation | null> {
  const adapter = deps.adapters.get(row.adapter);
  if (adapter.describeRotation === undefined) {
    return null;
  }
  return deps.adapters.call(row.adapter, toSecretRef(row), "describe_rotation", localSecretReader(deps), (described, call) => described.describeRotation!(call));
}

/** Converts an upstream rotation to the record kept on the secret, or null when the upstream does not rotate it. */
export function toExternalRotation(upstream: UpstreamRotation | null, now: Date): ExternalRotation | null {
  if (upstream === null || !upstream.enabled || upstream.rotator === null) {
    return null;
  }
  return { rotator: upstream.rotator, schedule: upstream.schedule, window: upstream.window, checked_at: now.toISOString() };
}

/** Explains why the broker does not rotate a secret its upstream rotates, with the fix. */
export function rotatedUpstreamReason(external: ExternalRotation): string {
  return (
    `the upstream rotates this secret itself (${external.rotator}, schedule ${external.schedule ?? "none"}), so the broker does not rotate it; ` +
    "rotate it upstream, or turn off the upstream rotation and refresh the mark with secrets-broker secret rotation-schedule <name> --refresh (POST /v1/secrets/{id}/external-rotation/refresh)"
  );
}

/**
 * Records on the secret what the upstream's rotation is now: marks it when the upstream
 * rotates it, and clears the mark when it no longer does. The broker's own schedule stops
 * while the mark is set and restarts from the secret's rotation policy when it is cleared.
 * An unchanged mark leaves the schedule alone.
 * Writes `secret.external_rotation_refresh` with the rotator before and after.
 */
export async function recordExternalRotation(
  deps: BrokerDeps,
  tx: Executor,
  record: RecordAudit,
  row: SecretRow,
  upstream: UpstreamRotation | null,
  reason: string | null = null,
): Promise<SecretView> {
  const now = deps.clock.now();
  const externalRotation = toExternalRotation(upstream, now);
  const since = row.lastRotatedAt ?? row.createdAt;
  const markChanged = (row.externalRotation === null) !== (externalRotation === null);
  const restarted = externalRotation === null && row.currentVersion !== null ? nextRotationAt(row.rotation, since, row.id) : null;
  // An unchanged mark keeps the schedule as it is, such as a retry time after a rollback.
  const scheduled = markChanged ? restarted : row.nextRotationAt;

  const [updated] = await tx.update(secrets).set({ externalRotation, nextRotationAt: scheduled, updatedAt: now }).where(eq(secrets.id, row.id)).returning();
  record({
    action: "secret.external_rotation_refresh",
    target: row.id,
    details: { name: row.name, rotator_before: row.externalRotation?.rotator ?? null, rotator_after: externalRotation?.rotator ?? null, reason },
  });
  return toSecretView(updated!);
}
