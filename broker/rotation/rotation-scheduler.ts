import { hostname } from "node:os";
import { Cron } from "croner";
import { randomBytes } from "node:crypto";
import { and, asc, eq, isNull, lte, sql } from "drizzle-orm";
import { SYSTEM_CONTEXT } from "../audit/audit-types.js";
import { auditedTransaction } from "../audit/audit-writer.js";
import { rowsOf } from "../db/database.js";
import { secrets } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { auditDeps } from "../http/auth-middleware.js";
import { loggableError } from "../logging/logger.js";
import { type RunOutcome, runRotation } from "./rotation-runner.js";
import { startRotation } from "./rotation-start.js";

/** Secrets turned into rotations per tick, oldest due first; the rest wait for the next tick. */
export const ROTATION_ENQUEUE_BATCH = 200;
/** Rotations one process claims and runs at once; a tick repeats batches until none is left. */
export const ROTATION_CONCURRENCY = 8;

/** Result of one scheduler tick. */
export interface RotationTickResult {
  /** Secrets whose due time had come and got a rotation. */
  started: number;
  /** Rotations this process claimed and ran, by how each run ended. */
  outcomes: RunOutcome[];
}

/** An id for this process's claims: host, process id and a random part, so that a restarted process never inherits an old claim. */
export function newClaimOwner(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
}

/**
 * Runs one tick: starts a rotation for every secret whose `next_rotation_at` has come, then
 * claims unclaimed (or lapsed) rotations and runs them. Both steps use `FOR UPDATE
 * SKIP LOCKED`, so that of several processes exactly one starts and runs each rotation.
 */
export async function runRotationTick(deps: BrokerDeps, owner: string, signal?: AbortSignal): Promise<RotationTickResult> {
  const started = await startDueRotations(deps);
  const outcomes: RunOutcome[] = [];
  // Claim and run batches until none is left, so that a backlog drains in one tick.
  for (let batch = await claimRotations(deps, owner); batch.length > 0 && !signal?.aborted; batch = await claimRotations(deps, owner)) {
    outcomes.push(...(await runBatch(deps, batch, owner, signal)));
  }
  return { started, outcomes };
}

async function runBatch(deps: BrokerDeps, claimed: string[], owner: string, signal?: AbortSignal): Promise<RunOutcome[]> {
  const outcomes: RunOutcome[] = [];
  const queue = [...claimed];
  async function worker(): Promise<void> {
    for (let id = queue.shift(); id; id = queue.shift()) {
      outcomes.push(await runRotation(deps, id, owner, deps.config.rotationClaimTtlMs, signal));
    }
  }
  await Promise.all(Array.from({ length: Math.min(ROTATION_CONCURRENCY, claimed.length) }, worker));
  return outcomes;
}

/** Starts rotations for due secrets, in one transaction, skipping secrets another process has locked. */
async function startDueRotations(deps: BrokerDeps): Promise<number> {
  const now = deps.clock.now();
  return auditedTransaction(auditDeps(deps), SYSTEM_CONTEXT, async (tx, record) => {
    const due = await tx
      .select()
      .from(secrets)
      .where(and(isNull(secrets.deletedAt), lte(secrets.nextRotationAt, now)))
      .orderBy(asc(secrets.nextRotationAt))
      .limit(ROTATION_ENQUEUE_BATCH)
      .for("update", { skipLocked: true });
    for (const secret of due) {
      await startRotation(tx, now, record, secret, { trigger: "schedule", reason: "rotation policy", actor: "system" }).catch(async (error: unknown) => {
        // A secret that cannot rotate (no current version, turned dynamic) stops being scheduled.
        deps.log.warn({ module: "rotation", secretId: secret.id, err: loggableError(error) }, "scheduled rotation not started");
        await tx.update(secrets).set({ nextRotationAt: null }).where(eq(secrets.id, secret.id));
      });
    }
    return due.length;
  });
}

/**
 * Claims up to `ROTATION_CONCURRENCY` rotations in progress that no process has claimed
 * (new ones, and those whose claim lapsed because their process died or waits for a
 * retry) and returns their ids, oldest first.
 */
async function claimRotations(deps: BrokerDeps, owner: string): Promise<string[]> {
  const now = deps.clock.now();
  const until = new Date(now.getTime() + deps.config.rotationClaimTtlMs);
  const result = await deps.db.execute(sql`
    update rotations set claimed_by = ${owner}, claim_expires_at = ${until.toISOString()}::timestamptz
    where id in (
      select id from rotations
      where status = 'in_progress' and (claim_expires_at is null or claim_expires_at <= ${now.toISOString()}::timestamptz)
      order by created_at
      limit ${ROTATION_CONCURRENCY}
      for update skip locked)
    returning id, created_at`);
  return rowsOf<{ id: string; created_at: string | Date }>(result)
    .sort((left, right) => new Date(left.created_at).getTime() - new Date(right.created_at).getTime())
    .map((row) => row.id);
}

/** The rotation scheduler of one process, started by `serve`. */
export interface RotationScheduler {
  /** Runs a tick now unless one is in flight, and resolves when it ends. */
  runNow(): Promise<void>;
  /** Stops ticking, lets the step in flight finish, releases claims and resolves. */
  stop(): Promise<void>;
}

/**
 * Schedules `runRotationTick` on `config.rotationSchedule`. Ticks never overlap within
 * a process; a failed tick is logged and the next one tries again.
 */
export function startRotationScheduler(deps: BrokerDeps): RotationScheduler {
  const log = deps.log.child({ module: "rotation-scheduler" });
  const owner = newClaimOwner();
  const stopping = new AbortController();
  let inFlight: Promise<void> | undefined;
  let tickAgain = false;

  async function tick(): Promise<void> {
    try {
      const result = await runRotationTick(deps, owner, stopping.signal);
      if (result.started > 0 || result.outcomes.length > 0) {
        log.info({ started: result.started, ran: result.outcomes.length }, "rotation tick finished");
      }
    } catch (error) {
      log.error({ err: loggableError(error) }, "rotation tick failed; the next tick tries again");
    }
  }

  /** Starts a tick now; a call during a tick makes one more tick follow, so that a rotation started meanwhile does not wait a whole period. */
  function runNow(): Promise<void> {
    if (stopping.signal.aborted) {
      return Promise.resolve();
    }
    if (inFlight) {
      tickAgain = true;
      return inFlight;
    }
    inFlight = (async () => {
      do {
        tickAgain = false;
        await tick();
      } while (tickAgain && !stopping.signal.aborted);
    })().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  const cron = new Cron(deps.config.rotationSchedule, { unref: true }, () => void runNow());
  log.info({ schedule: deps.config.rotationSchedule, owner, nextRun: cron.nextRun()?.toISOString() ?? null }, "rotation scheduler started");

  return {
    runNow,
    async stop() {
      cron.stop();
      stopping.abort();
      await inFlight;
      log.info("rotation scheduler stopped");
    },
  };
}
