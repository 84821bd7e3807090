import { and, eq, sql } from "drizzle-orm";
import { RotatedUpstream } from "../../adapters/errors.js";
import type { RequestContext } from "../audit/audit-types.js";
import { rowsOf } from "../db/database.js";
import { rotations, secretVersions, secrets } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { UpstreamFailed } from "../errors.js";
import { revokingTransaction } from "../leases/revoking-transaction.js";
import { loggableError } from "../logging/logger.js";
import { localSecretReader } from "../secrets/local-secret-reader.js";
import { toSecretRef, toVersionRef } from "../secrets/secret-views.js";
import { appendStep, heldBy, loadStepState, promotePending, recordStep, runAdapterStep, type StepState } from "./rotation-steps.js";
import { nextStep, type RotationRow, type RotationStep } from "./rotation-types.js";

/** Retryable failures of one rotation before it is rolled back. */
export const ROTATION_MAX_ATTEMPTS = 3;
/** Wait before a step that failed with a retryable error runs again, in milliseconds. */
export const ROTATION_RETRY_DELAY_MS = 30_000;
/** After a rollback, a rotation policy tries again this much later, in milliseconds. */
export const ROTATION_RETRY_AFTER_ROLLBACK_MS = 60 * 60 * 1000;

/** Outcome of a run: the rotation finished, rolled back, waits for a retry, or this process gave it up. */
export type RunOutcome = "completed" | "rolled_back" | "retry_later" | "released";

/**
 * Runs the claimed rotation `rotationId` from its last completed step to the end. Each
 * step runs the adapter outside any transaction, then records its outcome (and, for
 * finish, the new stages) in one audited transaction. Before each step the claim is
 * extended; a process that lost its claim stops. When `signal` fires, the run stops
 * after the step in flight and releases the claim, so that another process resumes.
 */
export async function runRotation(deps: BrokerDeps, rotationId: string, owner: string, claimTtlMs: number, signal?: AbortSignal): Promise<RunOutcome> {
  const log = deps.log.child({ module: "rotation", rotationId });
  for (;;) {
    if (signal?.aborted) {
      await releaseClaim(deps, rotationId, owner, deps.clock.now());
      log.info("rotation paused for shutdown; another process resumes it");
      return "released";
    }
    const rotation = await extendClaim(deps, rotationId, owner, claimTtlMs);
    if (!rotation) {
      log.warn("rotation claim lost to another process; stopping here");
      return "released";
    }
    const step = nextStep(rotation.lastStep);
    if (!step) {
      return "completed";
    }

    const state = await loadStepState(deps.db, rotation);
    const outcome = await runStep(deps, state, step, owner);
    if (outcome !== "continue") {
      return outcome;
    }
  }
}

async function runStep(deps: BrokerDeps, state: StepState, step: RotationStep, owner: string): Promise<RunOutcome | "continue"> {
  const startedAt = deps.clock.now();
  const context = rotationContext(state.rotation);
  try {
    if (state.secret.deletedAt) {
      throw new Error(`secret ${state.secret.id} was deleted during the rotation`);
    }
    const created = await runAdapterStep(deps, state, step);
    await revokingTransaction(deps, context, async (tx, record) => {
      await ensureClaim(tx, state.rotation.id, owner);
      const now = deps.clock.now();
      if (step === "finish") {
        await promotePending(tx, record, state, startedAt, now);
      } else {
        await recordStep(tx, record, state, step, startedAt, now, created);
      }
    });
  } catch (error) {
    if (error instanceof ClaimLost) {
      deps.log.warn({ module: "rotation", rotationId: state.rotation.id, step }, "rotation claim lost during a step; the new owner repeats it");
      return "released";
    }
    return handleFailure(deps, state, step, startedAt, error);
  }

  if (step === "finish") {
    deps.metrics.rotations.inc({ trigger: state.rotation.trigger, outcome: "completed" });
    deps.log.info({ module: "rotation", rotationId: state.rotation.id, secretId: state.secret.id, version: state.pending?.version }, "rotation completed");
    return "completed";
  }
  return "continue";
}

/**
 * Handles a failed step. A retryable failure (upstream unavailable or slow) leaves the
 * rotation in progress for another try after `ROTATION_RETRY_DELAY_MS`, up to
 * `ROTATION_MAX_ATTEMPTS`. Anything else, or the last try, rolls it back.
 */
async function handleFailure(deps: BrokerDeps, state: StepState, step: RotationStep, startedAt: Date, error: unknown): Promise<RunOutcome> {
  const { rotation } = state;
  const message = error instanceof Error ? error.message : "unknown error";
  const attempts = rotation.attempts + 1;
  const retryable = error instanceof UpstreamFailed && error.retryable;
  deps.log.warn({ module: "rotation", rotationId: rotation.id, secretId: rotation.secretId, step, attempts, retryable, err: loggableError(error) }, "rotation step failed");
  if (retryable && attempts < ROTATION_MAX_ATTEMPTS) {
    await recordRetry(deps, state, step, startedAt, message, attempts);
    return "retry_later";
  }
  await rollBack(deps, state, step, startedAt, message, rotatedUpstream(error));
  return "rolled_back";
}

async function recordRetry(deps: BrokerDeps, state: StepState, step: RotationStep, startedAt: Date, message: string, attempts: number): Promise<void> {
  const { rotation } = state;
  const now = deps.clock.now();
  await revokingTransaction(deps, rotationContext(rotation), async (tx, record) => {
    await tx
      .update(rotations)
      .set({
        attempts,
        steps: appendStep(rotation, { step, started_at: startedAt.toISOString(), finished_at: now.toISOString(), outcome: "failure", error: message }),
        claimedBy: null,
        claimExpiresAt: new Date(now.getTime() + ROTATION_RETRY_DELAY_MS),
        updatedAt: now,
      })
      .where(eq(rotations.id, rotation.id));
    record({ action: "rotation.step", target: rotation.id, outcome: "failure", details: { secret_id: rotation.secretId, step, attempts, error: message, retry: true } });
  });
}

/**
 * Rolls a rotation back. The adapter discards the pending version upstream and puts the
 * current value back where the set step replaced it. Then the pending version row is
 * removed, the current version stays current, and the record names the failed step.
 * Where the upstream cannot go back (a Vault static role), the record's error states
 * that the pending value stays in use upstream.
 */
async function rollBack(deps: BrokerDeps, state: StepState, step: RotationStep, startedAt: Date, failure: string, upstream: RotatedUpstream | undefined): Promise<void> {
  const { rotation, secret, pending } = state;
  const { discardError, unrestored } = await discardUpstream(deps, state);
  const message = unrestored === null ? failure : `${failure} Rollback: ${unrestored}`;

  const now = deps.clock.now();
  await revokingTransaction(deps, rotationContext(rotation), async (tx, record) => {
    if (pending) {
      await tx.delete(secretVersions).where(and(eq(secretVersions.secretId, secret.id), eq(secretVersions.version, pending.version), eq(secretVersions.stage, "pending")));
    }
    await tx
      .update(rotations)
      .set({
        status: "rolled_back",
        failedStep: step,
        error: message,
        attempts: rotation.attempts + 1,
        steps: appendStep(rotation, { step, started_at: startedAt.toISOString(), finished_at: now.toISOString(), outcome: "failure", error: failure }),
        finishedAt: now,
        updatedAt: now,
        claimedBy: null,
        claimExpiresAt: null,
      })
      .where(eq(rotations.id, rotation.id));
    // A secret found rotated upstream is marked so, and the scheduler stops rotating it.
    const externalRotation = upstream ? { rotator: upstream.rotator, schedule: null, window: null, checked_at: now.toISOString() } : undefined;
    const retryAt = secret.rotation && !secret.deletedAt && !upstream ? new Date(now.getTime() + ROTATION_RETRY_AFTER_ROLLBACK_MS) : null;
    await tx.update(secrets).set({ nextRotationAt: retryAt, externalRotation }).where(eq(secrets.id, secret.id));
    record({
      action: "rotation.rollback",
      target: rotation.id,
      outcome: "failure",
      details: {
        secret_id: secret.id,
        failed_step: step,
        error: message,
        discarded_version: pending?.version ?? null,
        discard_error: discardError,
        restored: unrestored === null,
        current_version: secret.currentVersion,
      },
    });
  });
  deps.metrics.rotations.inc({ trigger: rotation.trigger, outcome: "rolled_back" });
  const log = { module: "rotation", rotationId: rotation.id, secretId: secret.id, failedStep: step, discardError };
  if (unrestored === null) {
    deps.log.warn(log, "rotation rolled back; the current version is unchanged");
  } else {
    deps.log.warn({ ...log, pendingVersion: pending?.version }, "rotation rolled back, but the upstream keeps the pending value in use");
  }
}

/** Has the adapter discard the pending version; returns its failure, or why the upstream could not go back. */
async function discardUpstream(deps: BrokerDeps, state: StepState): Promise<{ discardError: string | null; unrestored: string | null }> {
  const { secret, pending, current } = state;
  if (!pending) {
    return { discardError: null, unrestored: null };
  }
  try {
    const outcome = await deps.adapters.call(secret.adapter, toSecretRef(secret), "discard_pending", localSecretReader(deps), (adapter, call) =>
      adapter.discardPending(call, toVersionRef(pending), current ? toVersionRef(current) : null),
    );
    return { discardError: null, unrestored: outcome?.reason ?? null };
  } catch (error) {
    return { discardError: error instanceof Error ? error.message : "unknown error", unrestored: null };
  }
}

/** Extends the claim of `owner` and returns the rotation, or undefined when the claim was lost or it ended. */
async function extendClaim(deps: BrokerDeps, rotationId: string, owner: string, claimTtlMs: number): Promise<RotationRow | undefined> {
  const until = new Date(deps.clock.now().getTime() + claimTtlMs);
  const [row] = await deps.db
    .update(rotations)
    .set({ claimExpiresAt: until })
    .where(and(heldBy(rotationId, owner), eq(rotations.status, "in_progress")))
    .returning();
  return row;
}

async function releaseClaim(deps: BrokerDeps, rotationId: string, owner: string, now: Date): Promise<void> {
  await deps.db.update(rotations).set({ claimedBy: null, claimExpiresAt: now }).where(heldBy(rotationId, owner));
}

/** Locks the rotation row and checks that `owner` still holds it, so that a lapsed claim never records a step twice. */
async function ensureClaim(tx: Parameters<Parameters<typeof revokingTransaction>[2]>[0], rotationId: string, owner: string): Promise<void> {
  const result = await tx.execute(sql`select id from rotations where ${heldBy(rotationId, owner)} and status = 'in_progress' for update`);
  if (rowsOf(result).length === 0) {
    throw new ClaimLost(rotationId);
  }
}

/** Another process took the rotation over after this one's claim lapsed. */
class ClaimLost extends Error {
  override name = "ClaimLost";

  constructor(rotationId: string) {
    super(`rotation ${rotationId} is no longer claimed by this process`);
  }
}

/** Returns the adapter's RotatedUpstream behind a failed step, if that is why it failed. */
function rotatedUpstream(error: unknown): RotatedUpstream | undefined {
  const cause = error instanceof UpstreamFailed ? error.cause : undefined;
  return cause instanceof RotatedUpstream ? cause : undefined;
}

function rotationContext(rotation: RotationRow): RequestContext {
  return { actor: rotation.actor, role: null, requestId: null, sourceAddress: null };
}
