import { and, eq, sql } from "drizzle-orm";
import type { AdapterCall, SecretAdapter, VersionRef } from "../../adapters/contract.js";
import type { RecordAudit } from "../audit/audit-writer.js";
import type { Executor } from "../db/database.js";
import { rotations, secretVersions, secrets, type RotationStepRecord } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { revokeLeases } from "../leases/lease-revocation.js";
import { fingerprintOf } from "../secrets/fingerprint.js";
import type { AdapterOperation } from "../secrets/adapter-registry.js";
import { localSecretReader } from "../secrets/local-secret-reader.js";
import { type SecretRow, toSecretRef, toVersionRef, type VersionRow } from "../secrets/secret-views.js";
import { retireCurrentVersion } from "../secrets/version-stages.js";
import { nextRotationAt } from "./rotation-policy.js";
import type { RotationRow, RotationStep } from "./rotation-types.js";

/** The secret and versions a step works on, read before it runs. */
export interface StepState {
  rotation: RotationRow;
  secret: SecretRow;
  current: VersionRow | undefined;
  /** The version this rotation created, once its create step ran. */
  pending: VersionRow | undefined;
}

type StepDeps = Pick<BrokerDeps, "db" | "clock" | "adapters" | "dataKeys">;

export async function loadStepState(db: Executor, rotation: RotationRow): Promise<StepState> {
  const [secret] = await db.select().from(secrets).where(eq(secrets.id, rotation.secretId));
  const versions = await db.select().from(secretVersions).where(eq(secretVersions.secretId, rotation.secretId));
  return {
    rotation,
    secret: secret!,
    current: versions.find((version) => version.version === rotation.fromVersion),
    pending: versions.find((version) => version.rotationId === rotation.id && version.stage === "pending"),
  };
}

/**
 * Runs the upstream part of one step through the adapter, outside any transaction.
 * Returns what the recording transaction needs: for the create step, the new version.
 */
export async function runAdapterStep(deps: StepDeps, state: StepState, step: RotationStep): Promise<NewVersion | undefined> {
  const { secret, current, pending, rotation } = state;
  const currentRef = current ? toVersionRef(current) : null;
  const call = <T>(operation: AdapterOperation, work: (adapter: SecretAdapter, adapterCall: AdapterCall) => Promise<T>): Promise<T> =>
    deps.adapters.call(secret.adapter, toSecretRef(secret), operation, localSecretReader(deps), work);

  if (step === "create") {
    if (pending) {
      // A retried create step: the version exists already, so the same rotation id creates no second one.
      return undefined;
    }
    const created = await call("create_pending", (adapter, adapterCall) => adapter.createPending(adapterCall, { rotationId: rotation.id, current: currentRef }));
    return { version: created.version, sealedValue: created.sealedValue, fingerprint: fingerprintOf(await deps.dataKeys.fingerprintKey(), created.data) };
  }

  const pendingRef = requirePending(state);
  if (step === "set") {
    await call("set_pending", (adapter, adapterCall) => adapter.setPending(adapterCall, pendingRef));
  } else if (step === "test") {
    await call("test_pending", (adapter, adapterCall) => adapter.testPending(adapterCall, pendingRef));
  } else {
    await call("finish_pending", (adapter, adapterCall) => adapter.finishPending(adapterCall, pendingRef, currentRef));
    // The old version's credential ends upstream before the leases that hold it are revoked.
    // A failure fails the finish step, which is retried or rolled back and audited either way.
    if (currentRef && revokesOldLeases(rotation, secret)) {
      await call("retire_version", (adapter, adapterCall) => adapter.retireVersion?.(adapterCall, currentRef) ?? Promise.resolve());
    }
  }
  return undefined;
}

/** Returns whether finishing `rotation` revokes the older versions' leases: always for a compromise, else by the `old_leases` policy. */
function revokesOldLeases(rotation: RotationRow, secret: SecretRow): boolean {
  return rotation.trigger === "compromise" || secret.rotation?.old_leases === "revoke";
}

/** A version made by the create step, before it is stored. */
export interface NewVersion {
  version: string;
  sealedValue: string | null;
  fingerprint: string;
}

function requirePending(state: StepState): VersionRef {
  if (!state.pending) {
    throw new Error(`rotation ${state.rotation.id} has no pending version; its create step did not complete`);
  }
  return toVersionRef(state.pending);
}

/** Records a completed step in `tx`: the create step also stores the pending version. */
export async function recordStep(
  tx: Executor,
  record: RecordAudit,
  state: StepState,
  step: RotationStep,
  startedAt: Date,
  now: Date,
  created: NewVersion | undefined,
): Promise<void> {
  const { rotation } = state;
  if (created) {
    await tx.insert(secretVersions).values({
      secretId: rotation.secretId,
      version: created.version,
      stage: "pending",
      fingerprint: created.fingerprint,
      sealedValue: created.sealedValue,
      rotationId: rotation.id,
      createdAt: now,
      createdBy: rotation.actor,
    });
  }
  const toVersion = created?.version ?? rotation.toVersion ?? state.pending?.version ?? null;
  await tx
    .update(rotations)
    .set({ lastStep: step, toVersion, steps: appendStep(rotation, { step, started_at: startedAt.toISOString(), finished_at: now.toISOString(), outcome: "success" }), updatedAt: now })
    .where(eq(rotations.id, rotation.id));
  record({ action: "rotation.step", target: rotation.id, details: { secret_id: rotation.secretId, step, version: toVersion, fingerprint: created?.fingerprint ?? null } });
}

/**
 * The finish step's change, in `tx`: the pending version becomes current, the current
 * one previous and the older previous deprecated; the secret gets its next rotation
 * time. With the `revoke` lease policy, or for a compromise, every live lease of an
 * older version is revoked.
 */
export async function promotePending(tx: Executor, record: RecordAudit, state: StepState, startedAt: Date, now: Date): Promise<void> {
  const { rotation, secret } = state;
  const toVersion = state.pending!.version;
  await tx.select({ id: secrets.id }).from(secrets).where(eq(secrets.id, secret.id)).for("update");
  await retireCurrentVersion(tx, secret.id, rotation.fromVersion, now);
  await tx
    .update(secretVersions)
    .set({ stage: "current", promotedAt: now })
    .where(and(eq(secretVersions.secretId, secret.id), eq(secretVersions.version, toVersion)));
  await tx
    .update(secrets)
    .set({ currentVersion: toVersion, lastRotatedAt: now, nextRotationAt: nextRotationAt(secret.rotation, now, secret.id), updatedAt: now })
    .where(eq(secrets.id, secret.id));
  await tx
    .update(rotations)
    .set({
      status: "completed",
      lastStep: "finish",
      steps: appendStep(rotation, { step: "finish", started_at: startedAt.toISOString(), finished_at: now.toISOString(), outcome: "success" }),
      finishedAt: now,
      updatedAt: now,
      claimedBy: null,
      claimExpiresAt: null,
    })
    .where(eq(rotations.id, rotation.id));
  record({
    action: "rotation.finish",
    target: rotation.id,
    details: { secret_id: secret.id, from_version: rotation.fromVersion, to_version: toVersion, trigger: rotation.trigger },
  });

  if (revokesOldLeases(rotation, secret)) {
    const reason = `secret ${secret.name} rotated to version ${toVersion} (${rotation.trigger === "compromise" ? "compromise" : "lease policy revoke"})`;
    await revokeLeases(tx, now, record, { secretId: secret.id, exceptVersion: toVersion }, rotation.actor, reason);
  }
}

export function appendStep(rotation: RotationRow, entry: RotationStepRecord): RotationStepRecord[] {
  return [...rotation.steps, entry];
}

/** SQL for "claim still held by `owner`", to guard writes of a process that may have lost its claim. */
export function heldBy(rotationId: string, owner: string) {
  return sql`${rotations.id} = ${rotationId} and ${rotations.claimedBy} = ${owner}`;
}
