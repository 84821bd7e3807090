import { setTimeout as sleep } from "node:timers/promises";
import { and, asc, isNull, lte, sql, TransactionRollbackError } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { type Db, rowsOf } from "../../../broker/db/database.js";
import * as schema from "../../../broker/db/schema.js";
import { secrets } from "../../../broker/db/schema.js";
import type { BrokerDeps } from "../../../broker/deps.js";
import { newClaimOwner, ROTATION_CONCURRENCY, ROTATION_ENQUEUE_BATCH, runRotationTick } from "../../../broker/rotation/rotation-scheduler.js";
import { type BenchDatabase, openPgliteBenchDatabase, openPostgresBenchDatabase } from "../bench-database.js";
import { cpuUseSince, takeCpuSnapshot, waitForIdleMachine } from "../system-load.js";
import { benchDeps, initializeBenchBroker, newMasterKeys } from "./bench-runtime.js";
import type { BackendKind, RotationOptions } from "./rotation-options.js";
import { createSecretsInProcess, estatePolicy, secretNames } from "./secret-catalogue.js";

/**
 * Pause between two timed iterations, in milliseconds. `serve` ticks every 10 s by
 * default, and a short pause keeps the timed ticks from running as one hot loop while
 * the whole series still takes only seconds.
 */
const TICK_PAUSE_MS = 20;

/** Nearest-rank percentiles of one set of timings, in milliseconds. */
export interface Timings {
  p50: number;
  p95: number;
  max: number;
}

/** One series of timed ticks, each after a `select 1` on the same connection. */
export interface TickSeries {
  /** Completed rotation rows in the database during the series. */
  completedRotations: number;
  ticks: number;
  selectOne: Timings;
  tick: Timings;
  /** CPU use during the series, in cores: this process, and the whole machine (PostgreSQL included), or undefined where /proc is missing. */
  benchCores: number;
  machineCores: number | undefined;
}

export interface TickCase {
  backend: BackendKind;
  secrets: number;
  /** Time to create the secrets with `createSecret`, in seconds. */
  populateSeconds: number;
  series: TickSeries[];
  /** EXPLAIN ANALYZE of the tick's two statements after the last series, one text block each. */
  plans: { statement: string; lines: string[] }[];
  /** Ticks that found work although no secret was due. The run fails when any is listed. */
  problems: string[];
}

/**
 * Measures one scheduler tick with `options.tickSecrets` secrets that all have a rotation
 * policy and none of which is due: first with no rotation rows, then with
 * `options.historyRotations` completed rotation rows. The ticks run in this process with
 * `runRotationTick` on a one-connection pool (PGlite has one connection anyway), and each
 * is timed after a `select 1` on that connection.
 */
export async function measureTickCost(backend: BackendKind, options: RotationOptions): Promise<TickCase> {
  const database = backend === "pglite" ? await openPgliteBenchDatabase() : await openPostgresBenchDatabase(options.databaseUrl!, 1);
  try {
    const masterKeys = newMasterKeys();
    const deps = benchDeps(database.db, masterKeys);
    await initializeBenchBroker(deps);
    const populateSeconds = await populate(database, deps, options);
    await database.db.execute(sql`analyze`);
    console.error(`  ${backend}: ${options.tickSecrets} secrets created in ${populateSeconds.toFixed(1)} s`);

    const problems: string[] = [];
    const series = [await timeTicks(deps, 0, options, problems)];
    if (options.historyRotations > 0) {
      await insertCompletedRotations(database.db, options.historyRotations);
      await database.db.execute(sql`analyze`);
      series.push(await timeTicks(deps, options.historyRotations, options, problems));
    }
    for (const entry of series) {
      console.error(`  ${backend} with ${entry.completedRotations} completed rotations: tick p50 ${entry.tick.p50.toFixed(2)} ms, select 1 p50 ${entry.selectOne.p50.toFixed(2)} ms`);
    }
    const plans = await explainTick(database.db);
    await deps.adapters.close();
    return { backend, secrets: options.tickSecrets, populateSeconds, series, plans, problems };
  } finally {
    await database.close();
  }
}

/**
 * Creates the secrets with `createSecret`, with `options.createConcurrency` creations in
 * flight. On PostgreSQL it uses a second pool with one connection per creation, because
 * the timed pool has one connection.
 */
async function populate(database: BenchDatabase, deps: BrokerDeps, options: RotationOptions): Promise<number> {
  const names = secretNames("estate/app-", options.tickSecrets);
  const startedAt = performance.now();
  if (!database.url) {
    await createSecretsInProcess(deps, names, estatePolicy, options.createConcurrency);
    return (performance.now() - startedAt) / 1000;
  }

  const client = postgres(database.url, { max: options.createConcurrency, onnotice: () => undefined });
  try {
    const populationDeps = benchDeps(drizzle({ client, schema }) as unknown as Db, deps.masterKeys);
    await populationDeps.dataKeys.load();
    await createSecretsInProcess(populationDeps, names, estatePolicy, options.createConcurrency);
    await populationDeps.adapters.close();
  } finally {
    await client.end({ timeout: 5 });
  }
  return (performance.now() - startedAt) / 1000;
}

async function timeTicks(deps: BrokerDeps, completedRotations: number, options: RotationOptions, problems: string[]): Promise<TickSeries> {
  const owner = newClaimOwner();
  const selectOne: number[] = [];
  const tick: number[] = [];
  if (options.idleWaitSeconds > 0 && !(await waitForIdleMachine(options.idleWaitSeconds))) {
    console.error(`  tick series: the machine was still busy after ${options.idleWaitSeconds} s; running anyway`);
  }
  const cpuStart = await takeCpuSnapshot();
  for (let iteration = 0; iteration < options.warmupTicks + options.ticks; iteration += 1) {
    const selectStart = performance.now();
    await deps.db.execute(sql`select 1`);
    const tickStart = performance.now();
    const result = await runRotationTick(deps, owner);
    const tickEnd = performance.now();

    if (result.started > 0 || result.outcomes.length > 0) {
      problems.push(`tick ${iteration + 1} started ${result.started} and ran ${result.outcomes.length} rotations although none was due`);
    }
    if (iteration >= options.warmupTicks) {
      selectOne.push(tickStart - selectStart);
      tick.push(tickEnd - tickStart);
    }
    await sleep(TICK_PAUSE_MS);
  }
  const cpu = await cpuUseSince(cpuStart);
  return {
    completedRotations,
    ticks: options.ticks,
    selectOne: timingsOf(selectOne),
    tick: timingsOf(tick),
    benchCores: cpu.nodeCores,
    machineCores: cpu.machineCores,
  };
}

/**
 * Inserts `count` completed rotation rows spread evenly over the secrets, ten minutes
 * apart going back from now, shaped like those of a local rotation (four successful
 * steps, claim released). They stand in for the history of a long-running broker: the
 * tick never reads completed rotations, but they make the rotations table larger, which
 * the claim statement's plan has to cope with. No versions or audit events go with them.
 */
async function insertCompletedRotations(db: Db, count: number): Promise<void> {
  await db.execute(sql`
    with numbered as (select id, (row_number() over (order by id) - 1)::int as position from secrets),
         total as (select count(*)::int as secrets from secrets)
    insert into rotations (id, secret_id, trigger, reason, actor, status, last_step, steps, from_version, to_version,
                           attempts, claimed_by, claim_expires_at, created_at, updated_at, finished_at)
    select 'rot_history_' || g, numbered.id, 'schedule', 'rotation policy', 'system', 'completed', 'finish',
           jsonb_build_array(
             jsonb_build_object('step', 'create', 'started_at', at.started, 'finished_at', at.started + interval '5 ms', 'outcome', 'success'),
             jsonb_build_object('step', 'set', 'started_at', at.started + interval '5 ms', 'finished_at', at.started + interval '10 ms', 'outcome', 'success'),
             jsonb_build_object('step', 'test', 'started_at', at.started + interval '10 ms', 'finished_at', at.started + interval '15 ms', 'outcome', 'success'),
             jsonb_build_object('step', 'finish', 'started_at', at.started + interval '15 ms', 'finished_at', at.started + interval '20 ms', 'outcome', 'success')),
           (g / total.secrets + 1)::text, (g / total.secrets + 2)::text,
           0, null, null, at.started, at.started + interval '20 ms', at.started + interval '20 ms'
    from generate_series(0, ${count - 1}::int) as g
    cross join total
    join numbered on numbered.position = g % total.secrets
    cross join lateral (select now() - (g + 1) * interval '10 minutes' as started) as at`);
}

/**
 * Runs EXPLAIN (ANALYZE, BUFFERS) of the tick's two statements in a transaction that is
 * rolled back: the start query of `startDueRotations`, built as it builds it, and the
 * claim statement of `claimRotations`, whose text is repeated here.
 * NOTE: the claim statement below must be kept in step with `claimRotations` in
 * broker/rotation/rotation-scheduler.ts, which does not export it.
 */
async function explainTick(db: Db): Promise<{ statement: string; lines: string[] }[]> {
  const now = new Date();
  const until = new Date(now.getTime() + 60_000);
  const startQuery = db
    .select()
    .from(secrets)
    .where(and(isNull(secrets.deletedAt), lte(secrets.nextRotationAt, now)))
    .orderBy(asc(secrets.nextRotationAt))
    .limit(ROTATION_ENQUEUE_BATCH)
    .for("update", { skipLocked: true });
  const claimStatement = sql`
    update rotations set claimed_by = ${"explain"}, claim_expires_at = ${until.toISOString()}::timestamptz
    where id in (
      select id from rotations
      where status = 'in_progress' and (claim_expires_at is null or claim_expires_at <= ${now.toISOString()}::timestamptz)
      order by created_at
      limit ${ROTATION_CONCURRENCY}
      for update skip locked)
    returning id, created_at`;

  const plans: { statement: string; lines: string[] }[] = [];
  await db
    .transaction(async (tx) => {
      for (const [statement, query] of [
        ["start due rotations (select from secrets)", sql`explain (analyze, buffers) ${startQuery.getSQL()}`],
        ["claim rotations (update rotations)", sql`explain (analyze, buffers) ${claimStatement}`],
      ] as const) {
        const rows = rowsOf<Record<string, string>>(await tx.execute(query));
        plans.push({ statement, lines: rows.map((row) => Object.values(row)[0] ?? "") });
      }
      tx.rollback();
    })
    .catch((error: unknown) => {
      // tx.rollback() ends the transaction by throwing TransactionRollbackError. Any other error is a real failure.
      if (!(error instanceof TransactionRollbackError)) {
        throw error;
      }
    });
  return plans;
}

/** Returns the nearest-rank p50, p95 and maximum of `values`. */
function timingsOf(values: number[]): Timings {
  const sorted = [...values].sort((left, right) => left - right);
  const rank = (fraction: number) => sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1))] ?? Number.NaN;
  return { p50: rank(0.5), p95: rank(0.95), max: sorted.at(-1) ?? Number.NaN };
}
