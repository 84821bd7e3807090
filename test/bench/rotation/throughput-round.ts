import { setTimeout as sleep } from "node:timers/promises";
import type { Db } from "../../../broker/db/database.js";
import { waitForIdleMachine } from "../system-load.js";
import { checkFlippedOnce, checkRotatedOnce, makeDue, readRotationTimes } from "./due-rotations.js";
import type { BackendKind } from "./rotation-options.js";
import { readRotationTimeline, type RotationTimeline } from "./rotation-timeline.js";
import { profiled, type RunProfile } from "./run-profile.js";
import { secretNames } from "./secret-catalogue.js";
import { type FlipRun, flipVersions, openConnections } from "./version-flip.js";

/** Pause between the two sides of a round, so that a scheduler tick or commit of one side does not run into the other, in milliseconds. */
const SETTLE_MS = 1000;

/** The engine side of one round: N secrets made due by one UPDATE, rotated by the scheduler. */
export interface EngineRun {
  rotations: number;
  /** From the UPDATE to the last rotation's finish, in milliseconds. */
  elapsedMs: number;
  /** From the UPDATE to the first rotation's start, which includes the wait for the next tick, in milliseconds. */
  firstStartMs: number;
  /** Rotations divided by the time from the UPDATE to the last finish. */
  rotationsPerSecond: number;
  /** Rotations divided by the time from the first start to the last finish, without the wait for the first tick. */
  rotationsPerSecondAfterStart: number;
  /** Rotations completed by each process, from its log, or undefined for one in-process scheduler. */
  completedByProcess: number[] | undefined;
  timeline: RotationTimeline;
  profile: RunProfile;
}

export interface BaselineRun extends FlipRun {
  profile: RunProfile;
}

export interface ThroughputRound {
  round: number;
  baselineFirst: boolean;
  baseline: BaselineRun;
  engine: EngineRun;
}

/** One throughput case: a backend and a number of processes, with all its rounds. */
export interface ThroughputCase {
  backend: BackendKind;
  processes: number;
  /** Max rotations in flight, ROTATION_CONCURRENCY per process. The baseline runs as many flips at once. */
  concurrency: number;
  secrets: number;
  rounds: ThroughputRound[];
  /** Secrets created through the API (engine and baseline), and the time that took, for the report. */
  created: { secrets: number; seconds: number };
  /** End states that differ from one completed rotation (or flip) per secret. The run fails when any is listed. */
  problems: string[];
  /** Log lines of the broker processes at level warn or above during the case. */
  brokerWarnings: string[];
}

/** What a round needs from its backend: where to write, what to profile, how to create secrets and how rotations get run. */
export interface RoundDriver {
  db: Db;
  sampleUrl: string | undefined;
  brokerPids: number[];
  /** Processes that run rotations, each with ROTATION_CONCURRENCY rotations in flight at most. */
  processes: number;
  concurrency: number;
  createSecrets(names: string[]): Promise<string[]>;
  /** Returns once every due rotation of these secrets ended. */
  runDueRotations(secretIds: string[]): Promise<void>;
  /** Rotations of these secrets that each process completed, or undefined with one in-process scheduler. */
  completedByProcess(secretIds: string[]): Promise<number[] | undefined>;
}

/** Which round to run, on how many secrets each side, and how long to wait for an idle machine before each side, in seconds. */
export interface RoundSettings {
  prefix: string;
  round: number;
  secrets: number;
  idleWaitSeconds: number;
}

/**
 * Runs one round: creates N engine secrets and N baseline secrets, then, in turn,
 * flips the baseline secrets, and makes the engine secrets due and waits for their
 * rotations. Appends any end state that differs from one rotation or flip per secret to
 * `problems`.
 */
export async function runRound(driver: RoundDriver, settings: RoundSettings, problems: string[]): Promise<{ result: ThroughputRound; createdSeconds: number }> {
  const { prefix, round, secrets } = settings;
  const engineNames = secretNames(`${prefix}engine/`, secrets);
  const baselineNames = secretNames(`${prefix}flip/`, secrets);
  const createdAt = performance.now();
  const ids = await driver.createSecrets([...engineNames, ...baselineNames]);
  const createdSeconds = (performance.now() - createdAt) / 1000;
  const engineIds = ids.slice(0, secrets);
  const baselineIds = ids.slice(secrets);

  // Alternate which side goes first, so that neither always runs on the warmer database.
  const baselineFirst = round % 2 === 1;
  let baseline: BaselineRun | undefined;
  let engine: EngineRun | undefined;
  for (const side of baselineFirst ? ["baseline", "engine"] : ["engine", "baseline"]) {
    await sleep(SETTLE_MS);
    if (settings.idleWaitSeconds > 0 && !(await waitForIdleMachine(settings.idleWaitSeconds))) {
      console.error(`  round ${round} ${side}: the machine was still busy after ${settings.idleWaitSeconds} s; running anyway`);
    }
    if (side === "baseline") {
      await openConnections(driver.db, driver.concurrency);
      const { value, profile } = await profiled(driver, () => flipVersions(driver.db, baselineIds, driver.concurrency));
      baseline = { ...value, profile };
    } else {
      engine = await runEngineSide(driver, `${prefix}engine/`, engineIds);
    }
  }

  problems.push(...(await checkRotatedOnce(driver.db, engineIds)), ...(await checkFlippedOnce(driver.db, baselineIds)).slice(0, 5));
  return { result: { round, baselineFirst, baseline: baseline!, engine: engine! }, createdSeconds };
}

async function runEngineSide(driver: RoundDriver, prefix: string, secretIds: string[]): Promise<EngineRun> {
  const { value, profile } = await profiled(driver, async () => {
    const dueAt = Date.now();
    const due = await makeDue(driver.db, prefix);
    if (due !== secretIds.length) {
      throw new Error(`the UPDATE made ${due} secrets under ${prefix} due, expected ${secretIds.length}`);
    }
    await driver.runDueRotations(secretIds);
    return { dueAt, times: await readRotationTimes(driver.db, secretIds) };
  });

  const { dueAt, times } = value;
  if (!times.firstStartedAt || !times.lastFinishedAt) {
    throw new Error(`no rotation of the ${secretIds.length} secrets under ${prefix} started or finished`);
  }
  const elapsedMs = times.lastFinishedAt.getTime() - dueAt;
  const afterStartMs = times.lastFinishedAt.getTime() - times.firstStartedAt.getTime();
  return {
    rotations: times.completed,
    elapsedMs,
    firstStartMs: times.firstStartedAt.getTime() - dueAt,
    rotationsPerSecond: times.completed / (elapsedMs / 1000),
    rotationsPerSecondAfterStart: times.completed / (afterStartMs / 1000),
    completedByProcess: await driver.completedByProcess(secretIds),
    timeline: await readRotationTimeline(driver.db, secretIds, driver.concurrency, driver.processes),
    profile,
  };
}
