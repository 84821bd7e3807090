import path from "node:path";
import { parseArgs } from "node:util";

export type BackendKind = "pglite" | "postgres";

/** What one `npm run bench:issuance` measures, from its command-line options. */
export interface IssuanceOptions {
  backends: BackendKind[];
  /** Concurrent request loops per closed-loop case. */
  concurrencies: number[];
  /** Measured time per closed-loop case, in seconds. */
  seconds: number;
  /** Unmeasured time before each closed-loop case, so that connections and JIT are warm, in seconds. */
  warmupSeconds: number;
  /** Measured time of the open-loop run at half of the peak throughput, in seconds. */
  halfLoadSeconds: number;
  /** Backend of the long run that samples the broker's RSS, or undefined to skip it. */
  memoryBackend: BackendKind | undefined;
  /** Token count at which the long run stops. */
  memoryTokens: number;
  /** Time at which the long run stops even if it issued fewer tokens, in seconds. */
  memorySeconds: number;
  /** Maximum wait for an idle machine before each timed run, in seconds, or 0 to not wait. */
  idleWaitSeconds: number;
  /** Directory for V8 CPU profiles of the broker processes, or undefined to not profile them. */
  cpuProfileDir: string | undefined;
  databaseUrl: string | undefined;
}

const DEFAULT_CONCURRENCIES = [1, 8, 32];
const DEFAULT_SECONDS = 5;
const DEFAULT_WARMUP_SECONDS = 1;
const DEFAULT_HALF_LOAD_SECONDS = 10;
const DEFAULT_MEMORY_TOKENS = 100_000;
const DEFAULT_IDLE_WAIT_SECONDS = 0;
/** Time limits of the long run: PGlite runs for this long, PostgreSQL stops at this bound if it is slower than expected. */
const DEFAULT_MEMORY_SECONDS: Record<BackendKind, number> = { pglite: 180, postgres: 280 };
/** Upper bound on concurrent loops, because every loop keeps one connection to the broker open. */
const MAX_CONCURRENCY = 256;
/**
 * Upper bound on the long run's time, in seconds. Its client assertions are signed before it
 * starts and live for 300 seconds, and the pool discards them after 290. A longer run would
 * sign its last assertions during the run, in the process that sends the requests.
 */
export const MAX_MEMORY_SECONDS = 280;

export const USAGE = `usage: npm run bench:issuance -- [options]

Measures access-token issuance through POST /v1/token of a broker process, against an
in-process baseline (verify a client assertion, sign an access token, insert a lease row)
with the same concurrency, and samples the broker's RSS over a long run.

  --backend pglite|postgres|all   backends to measure (default: pglite, plus postgres when DATABASE_URL is set)
  --concurrency 1,8,32            concurrent request loops per case (default: ${DEFAULT_CONCURRENCIES.join(",")})
  --seconds N                     measured seconds per closed-loop case (default: ${DEFAULT_SECONDS})
  --warmup-seconds N              unmeasured seconds before each closed-loop case (default: ${DEFAULT_WARMUP_SECONDS})
  --half-load-seconds N           measured seconds of the open loop at half of the peak throughput (default: ${DEFAULT_HALF_LOAD_SECONDS})
  --memory-backend B              backend of the long RSS run: pglite, postgres or none
                                  (default: postgres when DATABASE_URL is set, else pglite)
  --memory-tokens N               tokens after which the long run stops (default: ${DEFAULT_MEMORY_TOKENS})
  --memory-seconds N              seconds after which the long run stops, at most ${MAX_MEMORY_SECONDS}
                                  (default: ${DEFAULT_MEMORY_SECONDS.pglite} on pglite, ${DEFAULT_MEMORY_SECONDS.postgres} on postgres)
  --idle-wait N                   wait up to N seconds for an idle machine before each timed run
                                  (default: ${DEFAULT_IDLE_WAIT_SECONDS}, off); the run starts anyway after N seconds
  --cpu-profile DIR               run each broker process with node --cpu-prof, write its profile under
                                  DIR/<backend>, and report where its CPU time went. Profiling slows the
                                  broker a little, so use it for a separate diagnostic run

DATABASE_URL names a PostgreSQL server; the benchmark creates its own database there
and drops it at the end.`;

/** Raised for --help, so that the caller prints the usage and exits with 0. */
export class HelpRequested extends Error {
  override name = "HelpRequested";
}

/** Parses the benchmark options and throws an Error that names any invalid option. */
export function parseIssuanceOptions(argv: string[], environment: NodeJS.ProcessEnv): IssuanceOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: "string" },
      concurrency: { type: "string" },
      seconds: { type: "string" },
      "warmup-seconds": { type: "string" },
      "half-load-seconds": { type: "string" },
      "memory-backend": { type: "string" },
      "memory-tokens": { type: "string" },
      "memory-seconds": { type: "string" },
      "idle-wait": { type: "string" },
      "cpu-profile": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    throw new HelpRequested();
  }

  const databaseUrl = environment["DATABASE_URL"] || undefined;
  const memoryBackend = parseMemoryBackend(values["memory-backend"], databaseUrl);
  const memorySeconds = parseNumber("--memory-seconds", values["memory-seconds"], memoryBackend ? DEFAULT_MEMORY_SECONDS[memoryBackend] : 0, {
    min: 1,
    max: MAX_MEMORY_SECONDS,
  });
  return {
    backends: parseBackends(values.backend, databaseUrl),
    concurrencies: values.concurrency === undefined ? DEFAULT_CONCURRENCIES : parseConcurrencies(values.concurrency),
    seconds: parseNumber("--seconds", values.seconds, DEFAULT_SECONDS, { min: 0.5, max: 600 }),
    warmupSeconds: parseNumber("--warmup-seconds", values["warmup-seconds"], DEFAULT_WARMUP_SECONDS, { min: 0, max: 600 }),
    halfLoadSeconds: parseNumber("--half-load-seconds", values["half-load-seconds"], DEFAULT_HALF_LOAD_SECONDS, { min: 1, max: 600 }),
    memoryBackend,
    memoryTokens: Math.round(parseNumber("--memory-tokens", values["memory-tokens"], DEFAULT_MEMORY_TOKENS, { min: 1000, max: 1_000_000 })),
    memorySeconds,
    idleWaitSeconds: parseNumber("--idle-wait", values["idle-wait"], DEFAULT_IDLE_WAIT_SECONDS, { min: 0, max: 600 }),
    cpuProfileDir: values["cpu-profile"] ? path.resolve(values["cpu-profile"]) : undefined,
    databaseUrl,
  };
}

function parseBackends(value: string | undefined, databaseUrl: string | undefined): BackendKind[] {
  if (value === undefined) {
    return databaseUrl ? ["pglite", "postgres"] : ["pglite"];
  }
  const backends: BackendKind[] = [];
  for (const name of value === "all" ? ["pglite", "postgres"] : value.split(",")) {
    backends.push(parseBackendName("--backend", name, databaseUrl));
  }
  return backends;
}

function parseMemoryBackend(value: string | undefined, databaseUrl: string | undefined): BackendKind | undefined {
  if (value === undefined) {
    return databaseUrl ? "postgres" : "pglite";
  }
  return value === "none" ? undefined : parseBackendName("--memory-backend", value, databaseUrl);
}

function parseBackendName(option: string, name: string, databaseUrl: string | undefined): BackendKind {
  if (name !== "pglite" && name !== "postgres") {
    throw new Error(`invalid ${option} value '${name}': use pglite or postgres`);
  }
  if (name === "postgres" && !databaseUrl) {
    throw new Error(`${option} postgres needs DATABASE_URL; start a server with scripts/pg-cluster.sh start`);
  }
  return name;
}

function parseConcurrencies(value: string): number[] {
  return value.split(",").map((item) => {
    const count = Number(item);
    if (!Number.isInteger(count) || count < 1 || count > MAX_CONCURRENCY) {
      throw new Error(`invalid --concurrency value '${item}': use whole numbers from 1 to ${MAX_CONCURRENCY}`);
    }
    return count;
  });
}

function parseNumber(option: string, value: string | undefined, fallback: number, range: { min: number; max: number }): number {
  if (value === undefined) {
    return fallback;
  }
  const number = Number(value);
  if (!Number.isFinite(number) || number < range.min || number > range.max) {
    throw new Error(`invalid ${option} value '${value}': use a number from ${range.min} to ${range.max}`);
  }
  return number;
}
