import { type LoopResult, type Operation, runClosedLoop } from "../issuance/load-loops.js";
import { type LoadProfile, startLoadProfile } from "../issuance/load-profile.js";
import { waitForIdleMachine } from "../system-load.js";
import { SKEWED_OTHER_CORES } from "../writers.js";
import type { CredentialOptions } from "./credential-options.js";

/**
 * One side of a comparison. `token` and `local` form the local pair. `dynamic`,
 * `bare-roles` and `bare-roles-adapter` form the dynamic pair: the bare-role baseline runs
 * on one connection per request loop, and again on as many connections as the broker's
 * adapter used.
 */
export type SideName = "token" | "local" | "dynamic" | "bare-roles" | "bare-roles-adapter";

/** One timed run of one side. */
export interface SideRun {
  side: SideName;
  /** Concurrent loops; for the bare-role sides also the number of PostgreSQL connections. */
  concurrency: number;
  loop: LoopResult;
  profile: LoadProfile;
  /** Client assertions signed during the measured part because the pool ran dry (token side only). */
  signedOnDemand: number;
}

/** A side that can run once more. `run` resolves undefined when the side does not apply to this case. */
export interface Side {
  name: SideName;
  run(): Promise<SideRun | undefined>;
}

/** Every run of one concurrency, by side, in round order. */
export interface PairCase {
  concurrency: number;
  runs: Partial<Record<SideName, SideRun[]>>;
}

/** Attempts per run when --idle-wait is on: a run that other processes slowed down is repeated. */
export const MAX_ATTEMPTS = 3;

/** Logs progress to standard error, so that standard output contains only the report. */
export function progress(message: string): void {
  console.error(`  ${message}`);
}

/**
 * Runs every side `rounds` times. Odd rounds run the sides in the given order and even
 * rounds in reverse, so that neither side always runs first on a freshly warmed broker or
 * server, or last on a machine that has grown busier.
 */
export async function runRounds(concurrency: number, sides: Side[], rounds: number, label: string): Promise<PairCase> {
  const runs: PairCase["runs"] = {};
  for (let round = 0; round < rounds; round += 1) {
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) {
      const run = await side.run();
      if (!run) {
        continue;
      }
      (runs[side.name] ??= []).push(run);
      const failed = run.loop.failed > 0 ? `, ${run.loop.failed} failed` : "";
      progress(`${label} c=${concurrency} round ${round + 1} ${side.name} (${run.concurrency} loops): ${Math.round(run.loop.perSecond)}/s${failed}`);
    }
  }
  return { concurrency, runs };
}

/** Where the load profile of a run reads CPU time and pg_stat_activity. */
export interface ProfileTarget {
  brokerPid: number;
  /** Database whose backends are sampled, or undefined on PGlite. */
  databaseUrl: string | undefined;
}

/**
 * Runs `operation` in a closed loop unmeasured for the warm-up time, then measured for the
 * run time while the load profile samples. `prepare` runs before each attempt and
 * `onMeasuredStart` between warm-up and measurement. With --idle-wait it first waits for an idle machine, and repeats the run, up to
 * MAX_ATTEMPTS in all, while other processes used more than SKEWED_OTHER_CORES during it.
 */
export async function timedRun(
  options: Pick<CredentialOptions, "warmupSeconds" | "seconds" | "idleWaitSeconds">,
  run: {
    label: string;
    concurrency: number;
    operation: Operation;
    target: ProfileTarget;
    prepare?: () => Promise<void>;
    onMeasuredStart?: () => void;
  },
): Promise<{ loop: LoopResult; profile: LoadProfile }> {
  const attempts = options.idleWaitSeconds > 0 ? MAX_ATTEMPTS : 1;
  for (let attempt = 1; ; attempt += 1) {
    await run.prepare?.();
    if (options.idleWaitSeconds > 0 && !(await waitForIdleMachine(options.idleWaitSeconds))) {
      progress(`${run.label}: the machine was still busy after ${options.idleWaitSeconds} s; running anyway`);
    }
    if (options.warmupSeconds > 0) {
      await runClosedLoop({ concurrency: run.concurrency, durationMs: options.warmupSeconds * 1000, operation: run.operation });
    }

    run.onMeasuredStart?.();
    const profile = await startLoadProfile(run.target);
    const loop = await runClosedLoop({ concurrency: run.concurrency, durationMs: options.seconds * 1000, operation: run.operation });
    const result = { loop, profile: await profile.stop() };

    const otherCores = result.profile.cpu.other;
    if (attempt >= attempts || otherCores === undefined || otherCores <= SKEWED_OTHER_CORES) {
      return result;
    }
    progress(`${run.label}: other processes used ${otherCores.toFixed(2)} cores; repeating (attempt ${attempt + 1} of ${attempts})`);
  }
}

/** Throws unless an HTTP status is 200, so that the closed loop counts the request as failed with this message. */
export function requireOk(endpoint: string, status: number): true {
  if (status !== 200) {
    throw new Error(status === 0 ? `${endpoint} request failed without a response` : `${endpoint} returned ${status}`);
  }
  return true;
}
