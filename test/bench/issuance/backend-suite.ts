import { mkdir } from "node:fs/promises";
import path from "node:path";
import { sql } from "drizzle-orm";
import { loadConfig } from "../../../broker/config/config.js";
import { type Db, rowsOf } from "../../../broker/db/database.js";
import { openRuntime } from "../../../broker/server/bootstrap.js";
import { createScratchDatabase } from "../../support/test-database.js";
import { waitForIdleMachine } from "../system-load.js";
import { AssertionPool } from "./assertion-pool.js";
import { prepareBaseline } from "./baseline-issuance.js";
import { type BenchWorkload, registerBenchWorkload } from "./bench-workload.js";
import { createBrokerPathIssuer, type StageTimes } from "./broker-path.js";
import { type ProfileSummary, summarizeCpuProfile } from "./cpu-profile-summary.js";
import { type BrokerServer, readRssBytes, startBrokerServer } from "./broker-server.js";
import type { BackendKind, IssuanceOptions } from "./issuance-options.js";
import { type LoadProfile, startLoadProfile } from "./load-profile.js";
import { type LoopResult, type OpenLoopResult, runClosedLoop, runOpenLoop } from "./load-loops.js";
import { type MemoryRun, runMemoryRun } from "./memory-run.js";
import { checkFirstToken, createTokenClient, type TokenClient } from "./token-client.js";

/**
 * Throughput assumed before the first case has run, to size the pool of pre-signed
 * assertions, in tokens per second: through HTTP, and in process, where there is no HTTP.
 * Later cases size the pool from the best earlier case. A pool that runs dry makes the
 * benchmark sign on demand, which the report counts.
 */
const INITIAL_RATE_GUESS = 2000;
const INITIAL_IN_PROCESS_RATE_GUESS = 4000;
/** Headroom of the assertion pool over the expected number of requests. */
const POOL_HEADROOM = 1.5;
/** Fraction of the peak throughput at which the open loop runs. */
export const HALF_LOAD_FRACTION = 0.5;
/** Unmeasured time of the open loop at its rate before the measured part, in milliseconds. */
const HALF_LOAD_WARMUP_MS = 1000;
/** Upper bound on open-loop requests in flight; more would mean the broker has stalled. */
const HALF_LOAD_MAX_IN_FLIGHT = 1000;

/** One timed run, what it cost in CPU, and how many assertions it had to sign on demand. */
export interface MeasuredRun<Result extends LoopResult = LoopResult> {
  concurrency: number;
  loop: Result;
  profile: LoadProfile;
  signedOnDemand: number;
}

/** A run of the in-process broker path, with the time of each of its stages. */
export type BrokerPathRun = MeasuredRun & { stages: StageTimes };

/** Everything measured on one backend. */
export interface BackendResult {
  backend: BackendKind;
  serverVersion: string;
  /** Broker RSS right after /readyz returned 200, before any token request, in bytes. */
  idleRssBytes: number | undefined;
  http: MeasuredRun[];
  peak: MeasuredRun;
  halfLoad: MeasuredRun<OpenLoopResult>;
  /** The in-process broker path at concurrency 1, where stage times show no queueing, and at the peak concurrency. */
  brokerPath: BrokerPathRun[];
  baseline: MeasuredRun[];
  memory: MemoryRun | undefined;
  /** Broker log lines at level error or above. */
  brokerErrors: string[];
  /** Where the broker process spent its CPU time, with --cpu-profile. */
  cpuProfile: ProfileSummary | undefined;
}

/** Logs progress to standard error, so that standard output contains only the report. */
export function progress(message: string): void {
  console.error(`  ${message}`);
}

/**
 * Runs every measurement on one backend. A broker process serves the closed-loop cases at
 * each concurrency, the open loop at half of the peak and, on the memory backend, the long
 * run. Then, with the broker stopped, the in-process broker path and the baseline run on the
 * same database.
 */
export async function runBackendSuite(backend: BackendKind, options: IssuanceOptions): Promise<BackendResult> {
  const scratch = backend === "postgres" ? await createScratchDatabase("sbissue") : undefined;
  let broker: BrokerServer | undefined;
  try {
    const profileDir = options.cpuProfileDir ? path.join(options.cpuProfileDir, backend) : undefined;
    if (profileDir) {
      await mkdir(profileDir, { recursive: true });
    }
    broker = await startBrokerServer(scratch?.url, profileDir);
    progress(`${backend}: broker process ${broker.pid} listening on ${broker.address}`);
    const idleRssBytes = await readRssBytes(broker.pid);
    const workload = await registerBenchWorkload(broker.address, broker.adminToken);
    const pool = new AssertionPool(workload, broker.address);
    await checkFirstToken(broker.address, await pool.take());

    const http: MeasuredRun[] = [];
    for (const concurrency of options.concurrencies) {
      http.push(await measureHttp(broker, pool, concurrency, options, expectedRate(http, INITIAL_RATE_GUESS), scratch?.url));
    }
    const peak = http.reduce((best, run) => (run.loop.perSecond > best.loop.perSecond ? run : best));
    const halfLoad = await measureHalfLoad(broker, pool, peak, options, scratch?.url);
    const memory = options.memoryBackend === backend ? await measureMemory(broker, pool, peak, options) : undefined;

    await broker.stop();
    const brokerErrors = errorLines(broker.outputTail());
    const cpuProfile = profileDir ? await summarizeCpuProfile(profileDir) : undefined;
    const inProcess = await measureInProcess(broker, workload, pool, peak.concurrency, options, scratch?.url);
    return { backend, idleRssBytes, http, peak, halfLoad, memory, brokerErrors, cpuProfile, ...inProcess };
  } finally {
    await broker?.cleanup();
    await scratch?.drop();
  }
}

async function measureHttp(
  broker: BrokerServer,
  pool: AssertionPool,
  concurrency: number,
  options: IssuanceOptions,
  rateGuess: number,
  databaseUrl: string | undefined,
): Promise<MeasuredRun> {
  await pool.fill(Math.ceil(rateGuess * (options.warmupSeconds + options.seconds) * POOL_HEADROOM) + concurrency);
  await waitForQuietMachine(options, `http concurrency=${concurrency}`);
  const client = createTokenClient(broker.address, concurrency);
  try {
    const operation = () => requestToken(client, pool);
    await runClosedLoop({ concurrency, durationMs: options.warmupSeconds * 1000, operation });

    const onDemandBefore = pool.signedOnDemand;
    const profile = await startLoadProfile({ brokerPid: broker.pid, databaseUrl });
    const loop = await runClosedLoop({ concurrency, durationMs: options.seconds * 1000, operation });
    const run = { concurrency, loop, profile: await profile.stop(), signedOnDemand: pool.signedOnDemand - onDemandBefore };
    progress(`http concurrency=${concurrency}: ${Math.round(loop.perSecond)} tokens/s, ${loop.failed} failed`);
    return run;
  } finally {
    client.close();
  }
}

async function measureHalfLoad(
  broker: BrokerServer,
  pool: AssertionPool,
  peak: MeasuredRun,
  options: IssuanceOptions,
  databaseUrl: string | undefined,
): Promise<MeasuredRun<OpenLoopResult>> {
  const perSecond = peak.loop.perSecond * HALF_LOAD_FRACTION;
  await pool.fill(Math.ceil(perSecond * (options.halfLoadSeconds + HALF_LOAD_WARMUP_MS / 1000) * POOL_HEADROOM) + peak.concurrency);
  await waitForQuietMachine(options, "http open loop");
  const client = createTokenClient(broker.address, peak.concurrency);
  try {
    const operation = () => requestToken(client, pool);
    await runOpenLoop({ perSecond, durationMs: HALF_LOAD_WARMUP_MS, maxInFlight: HALF_LOAD_MAX_IN_FLIGHT, operation });

    const onDemandBefore = pool.signedOnDemand;
    const profile = await startLoadProfile({ brokerPid: broker.pid, databaseUrl });
    const loop = await runOpenLoop({ perSecond, durationMs: options.halfLoadSeconds * 1000, maxInFlight: HALF_LOAD_MAX_IN_FLIGHT, operation });
    const run = { concurrency: peak.concurrency, loop, profile: await profile.stop(), signedOnDemand: pool.signedOnDemand - onDemandBefore };
    progress(`http open loop at ${Math.round(perSecond)}/s: ${Math.round(loop.perSecond)} tokens/s, ${loop.failed} failed, ${loop.skipped} skipped`);
    return run;
  } finally {
    client.close();
  }
}

async function measureMemory(broker: BrokerServer, pool: AssertionPool, peak: MeasuredRun, options: IssuanceOptions): Promise<MemoryRun> {
  const expected = Math.min(options.memoryTokens, Math.ceil(peak.loop.perSecond * options.memorySeconds * POOL_HEADROOM));
  progress(`long run: signing ${expected} client assertions first`);
  await pool.fill(expected + peak.concurrency);

  await waitForQuietMachine(options, "long run");
  const onDemandBefore = pool.signedOnDemand;
  const client = createTokenClient(broker.address, peak.concurrency);
  try {
    const run = await runMemoryRun({
      brokerPid: broker.pid,
      metricsUrl: `${broker.address}/metrics`,
      concurrency: peak.concurrency,
      maxTokens: options.memoryTokens,
      maxSeconds: options.memorySeconds,
      operation: () => requestToken(client, pool),
      onProgress: (sample) => {
        if (Math.round(sample.elapsedSeconds) % 30 === 0) {
          progress(`long run: ${Math.round(sample.elapsedSeconds)} s, ${sample.tokens} tokens, RSS ${(sample.rssBytes / 2 ** 20).toFixed(1)} MiB`);
        }
      },
    });
    const onDemand = pool.signedOnDemand - onDemandBefore;
    progress(`long run: ${run.loop.completed} tokens in ${run.loop.seconds.toFixed(0)} s, ${run.loop.failed} failed, ${onDemand} assertions signed on demand`);
    return run;
  } finally {
    client.close();
  }
}

/**
 * Opens the stopped broker's database in this process with the broker's own environment, so
 * with the same data directory or PostgreSQL database, signing keys and issuer. Then it runs
 * the in-process broker path at concurrency 1 and at the peak concurrency, and the baseline
 * at every concurrency.
 */
async function measureInProcess(
  broker: BrokerServer,
  workload: BenchWorkload,
  pool: AssertionPool,
  peakConcurrency: number,
  options: IssuanceOptions,
  databaseUrl: string | undefined,
): Promise<{ serverVersion: string; brokerPath: BrokerPathRun[]; baseline: MeasuredRun[] }> {
  const runtime = await openRuntime(loadConfig(broker.environment));
  try {
    const poolSize = (rate: number, concurrency: number) => Math.ceil(rate * (options.warmupSeconds + options.seconds) * POOL_HEADROOM) + concurrency;

    const brokerPath: BrokerPathRun[] = [];
    for (const concurrency of [...new Set([1, peakConcurrency])]) {
      const stages: StageTimes = { authenticate: [], issue: [] };
      const issueInProcess = createBrokerPathIssuer(runtime.deps, stages);
      await pool.fill(poolSize(expectedRate(brokerPath, INITIAL_IN_PROCESS_RATE_GUESS), concurrency));
      const run = await measureInProcessRun(pool, concurrency, options, databaseUrl, issueInProcess, () => {
        stages.authenticate.length = 0;
        stages.issue.length = 0;
      });
      progress(`in-process broker path concurrency=${concurrency}: ${Math.round(run.loop.perSecond)} tokens/s`);
      brokerPath.push({ ...run, stages });
    }

    const issueBaseline = await prepareBaseline(runtime.deps.db, workload, broker.address);
    const baseline: MeasuredRun[] = [];
    for (const concurrency of options.concurrencies) {
      await pool.fill(poolSize(expectedRate(baseline, INITIAL_IN_PROCESS_RATE_GUESS), concurrency));
      const run = await measureInProcessRun(pool, concurrency, options, databaseUrl, issueBaseline);
      progress(`baseline concurrency=${concurrency}: ${Math.round(run.loop.perSecond)} tokens/s`);
      baseline.push(run);
    }
    return { serverVersion: await serverVersion(runtime.deps.db), brokerPath, baseline };
  } finally {
    await runtime.database.close();
  }
}

async function measureInProcessRun(
  pool: AssertionPool,
  concurrency: number,
  options: IssuanceOptions,
  databaseUrl: string | undefined,
  issue: (assertion: string) => Promise<boolean>,
  afterWarmup?: () => void,
): Promise<MeasuredRun> {
  const operation = async () => issue(await pool.take());
  await waitForQuietMachine(options, `in-process concurrency=${concurrency}`);
  await runClosedLoop({ concurrency, durationMs: options.warmupSeconds * 1000, operation });
  afterWarmup?.();

  const onDemandBefore = pool.signedOnDemand;
  const profile = await startLoadProfile({ databaseUrl });
  const loop = await runClosedLoop({ concurrency, durationMs: options.seconds * 1000, operation });
  return { concurrency, loop, profile: await profile.stop(), signedOnDemand: pool.signedOnDemand - onDemandBefore };
}

async function requestToken(client: TokenClient, pool: AssertionPool): Promise<boolean> {
  const status = await client.send(await pool.take());
  if (status !== 200) {
    throw new Error(status === 0 ? "token request failed without a response" : `token endpoint returned ${status}`);
  }
  return true;
}

/** Waits, with --idle-wait, for the machine to go idle before a timed run, and logs when it did not. */
async function waitForQuietMachine(options: IssuanceOptions, label: string): Promise<void> {
  if (options.idleWaitSeconds > 0 && !(await waitForIdleMachine(options.idleWaitSeconds))) {
    progress(`${label}: the machine was still busy after ${options.idleWaitSeconds} s; running anyway`);
  }
}

/** Returns the best throughput of earlier runs, or `initialGuess` before the first run. */
function expectedRate(runs: MeasuredRun[], initialGuess: number): number {
  return runs.length === 0 ? initialGuess : Math.max(...runs.map((run) => run.loop.perSecond));
}

async function serverVersion(db: Db): Promise<string> {
  const result = await db.execute(sql`select version() as version`);
  return rowsOf<{ version: string }>(result)[0]?.version ?? "unknown";
}

/** pino writes one JSON object per line; level 50 is error and 60 is fatal. */
function errorLines(output: string): string[] {
  return output.split("\n").filter((line) => /"level":(50|60)\b/.test(line));
}
