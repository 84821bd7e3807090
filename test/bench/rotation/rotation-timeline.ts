import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "../../../broker/db/database.js";
import { auditEvents, rotations } from "../../../broker/db/schema.js";

/**
 * Where the time of one round's rotations went, from the times that the rotation
 * records keep (`created_at`, each step's `started_at` and `finished_at`) and from the
 * `rotation.start` audit events. Durations are in milliseconds, and they are medians
 * over the round's rotations unless stated.
 */
export interface RotationTimeline {
  /** From the start of the rotation (the tick's start transaction) to its first step: waiting for a claim. */
  queuedMs: number;
  /** From the first step's start to the finish: the rotation's run while claimed. */
  runningMs: number;
  /**
   * Inside each step, from `started_at` (before the adapter call) to `finished_at`, the
   * clock read inside the recording transaction after it opened and checked the claim.
   */
  stepMs: Record<string, number>;
  /**
   * From one step's `finished_at` to the next step's `started_at`: the rest of the
   * recording transaction (its writes, the audit event, the commit), then the claim
   * extension and the reload of the rotation's state.
   */
  betweenStepsMs: number;
  /** One entry per tick that started rotations, in order. */
  startTransactions: StartTransaction[];
  /**
   * The share of the rotation slots (rotations in flight at most, over all processes)
   * that ran a rotation, from the first rotation's start to the last finish: the summed
   * running times divided by slots times that window.
   */
  slotOccupancy: number;
  /**
   * One process only: the share of the slots, over the same window, that sat idle
   * because their rotation had finished while others of its batch still ran. A tick
   * claims the next batch only when the whole batch has ended. Undefined for several
   * processes, whose batches overlap in time.
   */
  batchWaitShare: number | undefined;
}

/** A tick's start transaction, which creates the rotations of every due secret it locked and commits before any can be claimed. */
export interface StartTransaction {
  rotations: number;
  /** From the tick's clock read (the rotations' `created_at`) to the last `rotation.start` audit event, appended just before the commit. */
  totalMs: number;
  /**
   * From the first to the last `rotation.start` event: the appends at the end of the
   * transaction, one statement each. The first append locks the audit chain head until
   * the commit, so every other audited transaction waits at least this long.
   */
  appendsMs: number;
}

const STEP_NAMES = ["create", "set", "test", "finish"];

interface RotationSpan {
  tickStart: number;
  firstStep: number;
  finished: number;
}

/**
 * Reads the rotations of these secrets and returns where their time went. `slots` is
 * the number of rotations that may run at once over all processes.
 */
export async function readRotationTimeline(db: Db, secretIds: string[], slots: number, processes: number): Promise<RotationTimeline> {
  const rows = await db
    .select({ id: rotations.id, createdAt: rotations.createdAt, steps: rotations.steps })
    .from(rotations)
    .where(inArray(rotations.secretId, secretIds));

  const between: number[] = [];
  const steps = new Map<string, number[]>(STEP_NAMES.map((name) => [name, []]));
  const spans: RotationSpan[] = [];
  for (const row of rows) {
    const first = row.steps[0];
    const last = row.steps.at(-1);
    if (!first || !last) {
      continue;
    }
    spans.push({ tickStart: row.createdAt.getTime(), firstStep: Date.parse(first.started_at), finished: Date.parse(last.finished_at) });
    row.steps.forEach((step, index) => {
      steps.get(step.step)?.push(Date.parse(step.finished_at) - Date.parse(step.started_at));
      const next = row.steps[index + 1];
      if (next) {
        between.push(Date.parse(next.started_at) - Date.parse(step.finished_at));
      }
    });
  }

  const windowMs = Math.max(...spans.map((span) => span.finished)) - Math.min(...spans.map((span) => span.tickStart));
  const runningMs = spans.map((span) => span.finished - span.firstStep);
  return {
    queuedMs: median(spans.map((span) => span.firstStep - span.tickStart)),
    runningMs: median(runningMs),
    stepMs: Object.fromEntries([...steps].map(([name, values]) => [name, median(values)])),
    betweenStepsMs: median(between),
    startTransactions: await readStartTransactions(db, rows),
    slotOccupancy: sum(runningMs) / (slots * windowMs),
    batchWaitShare: processes === 1 ? batchWaitMs(spans) / (slots * windowMs) : undefined,
  };
}

/** Groups the rotations by the tick that started them and times each tick's start transaction from its audit events. */
async function readStartTransactions(db: Db, rows: { id: string; createdAt: Date }[]): Promise<StartTransaction[]> {
  const events = await db
    .select({ target: auditEvents.target, occurredAt: auditEvents.occurredAt })
    .from(auditEvents)
    .where(and(eq(auditEvents.action, "rotation.start"), inArray(auditEvents.target, rows.map((row) => row.id))));
  const appendedAt = new Map(events.map((event) => [event.target, event.occurredAt.getTime()]));

  const ticks = new Map<number, number[]>();
  for (const row of rows) {
    const appended = appendedAt.get(row.id);
    if (appended !== undefined) {
      ticks.set(row.createdAt.getTime(), [...(ticks.get(row.createdAt.getTime()) ?? []), appended]);
    }
  }
  return [...ticks]
    .sort(([left], [right]) => left - right)
    .map(([tickStart, appends]) => ({
      rotations: appends.length,
      totalMs: Math.max(...appends) - tickStart,
      appendsMs: Math.max(...appends) - Math.min(...appends),
    }));
}

/**
 * Adds up, over the batches of one process, the time each rotation's slot waited for
 * the slowest rotation of its batch. A rotation whose first step starts after every
 * rotation of the current batch finished opens the next batch.
 */
function batchWaitMs(spans: RotationSpan[]): number {
  const ordered = [...spans].sort((left, right) => left.firstStep - right.firstStep);
  let total = 0;
  let batch: RotationSpan[] = [];
  const closeBatch = () => {
    const end = Math.max(...batch.map((span) => span.finished));
    total += sum(batch.map((span) => end - span.finished));
    batch = [];
  };
  for (const span of ordered) {
    if (batch.length > 0 && span.firstStep >= Math.max(...batch.map((member) => member.finished))) {
      closeBatch();
    }
    batch.push(span);
  }
  if (batch.length > 0) {
    closeBatch();
  }
  return total;
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

function median(values: number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  if (sorted.length === 0) {
    return Number.NaN;
  }
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
