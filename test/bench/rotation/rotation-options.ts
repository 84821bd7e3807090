import { parseArgs } from "node:util";

export type BackendKind = "pglite" | "postgres";
export type RotationCase = "throughput" | "tick";

/** What one `npm run bench:rotation` measures, from its command-line options. */
export interface RotationOptions {
  backends: BackendKind[];
  cases: RotationCase[];
  /** Secrets made due at once in each throughput round. The baseline flips as many other secrets. */
  secrets: number;
  /** Numbers of `serve` processes that share the PostgreSQL database, one throughput case each. */
  processCounts: number[];
  /** Throughput rounds per case, each on new secrets. The report lists every round and the median. */
  rounds: number;
  /** Create requests in flight while the benchmark creates secrets through the API. */
  createConcurrency: number;
  /** Secrets in the database while the tick cost is measured, none of them due. */
  tickSecrets: number;
  /** Completed rotation rows added before the second series of ticks. */
  historyRotations: number;
  /** Timed ticks per series. */
  ticks: number;
  /** Untimed ticks before each series. */
  warmupTicks: number;
  /** Maximum wait for an idle machine before each timed run, in seconds, or 0 to not wait. */
  idleWaitSeconds: number;
  databaseUrl: string | undefined;
}

const DEFAULT_SECRETS = 300;
const DEFAULT_PROCESS_COUNTS = [1, 3];
const DEFAULT_ROUNDS = 3;
const DEFAULT_CREATE_CONCURRENCY = 16;
const DEFAULT_TICK_SECRETS = 10_000;
const DEFAULT_HISTORY_ROTATIONS = 50_000;
const DEFAULT_TICKS = 200;
const DEFAULT_WARMUP_TICKS = 20;
const DEFAULT_IDLE_WAIT_SECONDS = 0;
/**
 * Upper bound on processes: each `serve` process opens up to 10 connections and the baseline
 * one per concurrent flip, which must stay below the 200 connections of scripts/pg-cluster.sh.
 */
const MAX_PROCESSES = 6;

export const USAGE = `usage: npm run bench:rotation -- [options]

Measures the rotation engine with the local adapter: rotations per second when many
secrets fall due at once, with 1 and 3 \`serve\` processes sharing one PostgreSQL database
(and one in-process scheduler on PGlite), against bare version-flip transactions with the
same concurrency; and the cost of one scheduler tick when many secrets exist and none is
due, against a \`select 1\` round trip on the same connection.

  --backend pglite|postgres|all   backends to measure (default: pglite, plus postgres when DATABASE_URL is set)
  --cases throughput,tick         what to measure (default: both)
  --secrets N                     secrets made due at once per throughput round (default: ${DEFAULT_SECRETS})
  --processes 1,3                 serve processes per PostgreSQL throughput case, at most ${MAX_PROCESSES} (default: ${DEFAULT_PROCESS_COUNTS.join(",")})
  --rounds N                      throughput rounds per case, each on new secrets (default: ${DEFAULT_ROUNDS})
  --create-concurrency N          create requests in flight while secrets are created (default: ${DEFAULT_CREATE_CONCURRENCY})
  --tick-secrets N                secrets in the database while ticks are timed, none due (default: ${DEFAULT_TICK_SECRETS})
  --history-rotations N           completed rotation rows added before the second tick series (default: ${DEFAULT_HISTORY_ROTATIONS})
  --ticks N                       timed ticks per series (default: ${DEFAULT_TICKS})
  --warmup-ticks N                untimed ticks before each series (default: ${DEFAULT_WARMUP_TICKS})
  --idle-wait N                   wait up to N seconds for an idle machine before each timed run
                                  (default: ${DEFAULT_IDLE_WAIT_SECONDS}, off); the run starts anyway after N seconds

DATABASE_URL names a PostgreSQL server; the benchmark creates its own databases there
and drops them at the end.`;

/** Raised for --help, so that the caller prints the usage and exits with 0. */
export class HelpRequested extends Error {
  override name = "HelpRequested";
}

/** Parses the benchmark options and throws an Error that names any invalid option. */
export function parseRotationOptions(argv: string[], environment: NodeJS.ProcessEnv): RotationOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: "string" },
      cases: { type: "string" },
      secrets: { type: "string" },
      processes: { type: "string" },
      rounds: { type: "string" },
      "create-concurrency": { type: "string" },
      "tick-secrets": { type: "string" },
      "history-rotations": { type: "string" },
      ticks: { type: "string" },
      "warmup-ticks": { type: "string" },
      "idle-wait": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    throw new HelpRequested();
  }

  const databaseUrl = environment["DATABASE_URL"] || undefined;
  return {
    backends: parseBackends(values.backend, databaseUrl),
    cases: parseCases(values.cases),
    secrets: parseInteger("--secrets", values.secrets, DEFAULT_SECRETS, { min: 8, max: 100_000 }),
    processCounts: values.processes === undefined ? DEFAULT_PROCESS_COUNTS : parseIntegerList("--processes", values.processes, { min: 1, max: MAX_PROCESSES }),
    rounds: parseInteger("--rounds", values.rounds, DEFAULT_ROUNDS, { min: 1, max: 20 }),
    createConcurrency: parseInteger("--create-concurrency", values["create-concurrency"], DEFAULT_CREATE_CONCURRENCY, { min: 1, max: 64 }),
    tickSecrets: parseInteger("--tick-secrets", values["tick-secrets"], DEFAULT_TICK_SECRETS, { min: 1, max: 1_000_000 }),
    historyRotations: parseInteger("--history-rotations", values["history-rotations"], DEFAULT_HISTORY_ROTATIONS, { min: 0, max: 10_000_000 }),
    ticks: parseInteger("--ticks", values.ticks, DEFAULT_TICKS, { min: 1, max: 100_000 }),
    warmupTicks: parseInteger("--warmup-ticks", values["warmup-ticks"], DEFAULT_WARMUP_TICKS, { min: 0, max: 100_000 }),
    idleWaitSeconds: parseInteger("--idle-wait", values["idle-wait"], DEFAULT_IDLE_WAIT_SECONDS, { min: 0, max: 600 }),
    databaseUrl,
  };
}

function parseBackends(value: string | undefined, databaseUrl: string | undefined): BackendKind[] {
  if (value === undefined) {
    return databaseUrl ? ["pglite", "postgres"] : ["pglite"];
  }
  const backends: BackendKind[] = [];
  for (const name of value === "all" ? ["pglite", "postgres"] : value.split(",")) {
    if (name !== "pglite" && name !== "postgres") {
      throw new Error(`invalid --backend value '${name}': use pglite, postgres or all`);
    }
    if (name === "postgres" && !databaseUrl) {
      throw new Error("--backend postgres needs DATABASE_URL; start a server with scripts/pg-cluster.sh start");
    }
    backends.push(name);
  }
  return backends;
}

function parseCases(value: string | undefined): RotationCase[] {
  if (value === undefined) {
    return ["throughput", "tick"];
  }
  return value.split(",").map((name) => {
    if (name !== "throughput" && name !== "tick") {
      throw new Error(`invalid --cases value '${name}': use throughput, tick or both separated by a comma`);
    }
    return name;
  });
}

function parseIntegerList(option: string, value: string, range: { min: number; max: number }): number[] {
  return value.split(",").map((item) => parseInteger(option, item, 0, range));
}

function parseInteger(option: string, value: string | undefined, fallback: number, range: { min: number; max: number }): number {
  if (value === undefined) {
    return fallback;
  }
  const number = Number(value);
  if (!Number.isInteger(number) || number < range.min || number > range.max) {
    throw new Error(`invalid ${option} value '${value}': use a whole number from ${range.min} to ${range.max}`);
  }
  return number;
}
