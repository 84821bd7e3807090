import { setTimeout as sleep } from "node:timers/promises";
import { and, inArray, isNull, sql } from "drizzle-orm";
import { type Db, rowsOf } from "../../../broker/db/database.js";
import { rotations, secretVersions, secrets } from "../../../broker/db/schema.js";

/** Interval between two reads of the rotation counts while processes rotate, in milliseconds. */
const POLL_INTERVAL_MS = 50;
/** The steps of every rotation that completed, in order, as the rotation record lists them. */
const COMPLETED_STEPS = "create:success,set:success,test:success,finish:success";

/** When the rotations of one round started and ended, as recorded in the rotations table. */
export interface RotationTimes {
  completed: number;
  rolledBack: number;
  inProgress: number;
  /** The earliest `created_at`: when a scheduler tick started the first rotation. */
  firstStartedAt: Date | undefined;
  /** The latest `finished_at`: when the last rotation's finish step ran, just before its commit. */
  lastFinishedAt: Date | undefined;
}

/**
 * Makes every secret whose name starts with `prefix` due with one UPDATE that sets
 * `next_rotation_at` one second into the past, and returns the number of rows changed.
 */
export async function makeDue(db: Db, prefix: string): Promise<number> {
  const result = await db.execute(sql`
    update secrets set next_rotation_at = now() - interval '1 second'
    where name like ${`${prefix}%`} and deleted_at is null
    returning id`);
  return rowsOf(result).length;
}

/** Reads how many rotations of these secrets are in each status, and the first start and last finish. */
export async function readRotationTimes(db: Db, secretIds: string[]): Promise<RotationTimes> {
  const rows = await db
    .select({
      status: rotations.status,
      count: sql<number>`count(*)::int`,
      firstStartedAt: sql<string | null>`min(${rotations.createdAt})`,
      lastFinishedAt: sql<string | null>`max(${rotations.finishedAt})`,
    })
    .from(rotations)
    .where(inArray(rotations.secretId, secretIds))
    .groupBy(rotations.status);
  const countOf = (status: string) => rows.find((row) => row.status === status)?.count ?? 0;
  const dates = (values: (string | null)[]) => values.filter((value): value is string => value !== null).map((value) => new Date(value).getTime());
  const starts = dates(rows.map((row) => row.firstStartedAt));
  const finishes = dates(rows.map((row) => row.lastFinishedAt));
  return {
    completed: countOf("completed"),
    rolledBack: countOf("rolled_back"),
    inProgress: countOf("in_progress"),
    firstStartedAt: starts.length > 0 ? new Date(Math.min(...starts)) : undefined,
    lastFinishedAt: finishes.length > 0 ? new Date(Math.max(...finishes)) : undefined,
  };
}

/**
 * Polls the rotations table until every secret has one rotation that ended (completed
 * or rolled back) and none is in progress, and returns the final times. Throws after
 * `timeoutMs` with the counts seen last.
 */
export async function waitForRotations(db: Db, secretIds: string[], timeoutMs: number): Promise<RotationTimes> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const times = await readRotationTimes(db, secretIds);
    if (times.completed + times.rolledBack >= secretIds.length && times.inProgress === 0) {
      return times;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs / 1000} s waiting for ${secretIds.length} rotations: ` +
          `${times.completed} completed, ${times.rolledBack} rolled back, ${times.inProgress} in progress`,
      );
    }
    await sleep(POLL_INTERVAL_MS);
  }
}

/**
 * Checks the end state after each of these secrets rotated once from version 1: one
 * completed rotation with all four steps, version 1 previous and version 2 current, and
 * the secret rescheduled into the future. Returns a description of every secret that
 * differs, at most `limit` of them, or an empty list.
 */
export async function checkRotatedOnce(db: Db, secretIds: string[], limit = 5): Promise<string[]> {
  const problems: string[] = [];
  const records = await db
    .select({ secretId: rotations.secretId, status: rotations.status, steps: rotations.steps, claimedBy: rotations.claimedBy })
    .from(rotations)
    .where(inArray(rotations.secretId, secretIds));
  const bySecret = new Map<string, (typeof records)[number][]>();
  for (const record of records) {
    bySecret.set(record.secretId, [...(bySecret.get(record.secretId) ?? []), record]);
  }
  for (const secretId of secretIds) {
    const found = bySecret.get(secretId) ?? [];
    const steps = found[0]?.steps.map((step) => `${step.step}:${step.outcome}`).join(",");
    if (found.length !== 1 || found[0]!.status !== "completed" || steps !== COMPLETED_STEPS || found[0]!.claimedBy !== null) {
      problems.push(`secret ${secretId}: ${found.length} rotations, first ${found[0]?.status ?? "none"} with steps ${steps ?? "none"}`);
    }
  }
  problems.push(...(await checkFlippedOnce(db, secretIds)));
  return problems.slice(0, limit);
}

/**
 * Checks that each of these secrets has version 1 previous, version 2 current, current
 * version 2 and a next rotation time in the future. Returns one description per secret
 * that differs.
 */
export async function checkFlippedOnce(db: Db, secretIds: string[]): Promise<string[]> {
  const problems: string[] = [];
  const versions = await db
    .select({ secretId: secretVersions.secretId, version: secretVersions.version, stage: secretVersions.stage })
    .from(secretVersions)
    .where(inArray(secretVersions.secretId, secretIds));
  const stagesBySecret = new Map<string, string[]>();
  for (const row of versions) {
    stagesBySecret.set(row.secretId, [...(stagesBySecret.get(row.secretId) ?? []), `${row.version}:${row.stage}`]);
  }
  const secretRows = await db
    .select({ id: secrets.id, currentVersion: secrets.currentVersion, rescheduled: sql<boolean>`${secrets.nextRotationAt} > now()` })
    .from(secrets)
    .where(and(inArray(secrets.id, secretIds), isNull(secrets.deletedAt)));
  const secretById = new Map(secretRows.map((row) => [row.id, row]));
  for (const secretId of secretIds) {
    const stages = (stagesBySecret.get(secretId) ?? []).sort().join(",");
    const secret = secretById.get(secretId);
    if (stages !== "1:previous,2:current" || secret?.currentVersion !== "2" || secret.rescheduled !== true) {
      problems.push(`secret ${secretId}: versions ${stages || "none"}, current version ${secret?.currentVersion ?? "none"}, rescheduled ${String(secret?.rescheduled)}`);
    }
  }
  return problems;
}

/** Returns the ids of the rotations of these secrets. */
export async function rotationIdsOf(db: Db, secretIds: string[]): Promise<Set<string>> {
  const rows = await db.select({ id: rotations.id }).from(rotations).where(inArray(rotations.secretId, secretIds));
  return new Set(rows.map((row) => row.id));
}
