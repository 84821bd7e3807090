import { parseArgs } from "node:util";

export type BackendKind = "pglite" | "postgres";

/** What one `npm run bench` measures, from its command-line options. */
export interface BenchOptions {
  backends: BackendKind[];
  writerCounts: number[];
  /** Measured time per case and round, in seconds. */
  seconds: number;
  /** Time each case runs before measuring, so that connections and caches are warm, in seconds. */
  warmupSeconds: number;
  /** How many times each case runs. The table reports the median round. */
  rounds: number;
  /**
   * Maximum wait for an idle machine before each run, in seconds, or 0 to not wait.
   * When waiting is on, a run during which other processes used notable CPU is repeated.
   */
  idleWaitSeconds: number;
  databaseUrl: string | undefined;
}

const DEFAULT_WRITER_COUNTS = [1, 8, 32];
const DEFAULT_SECONDS = 3;
const DEFAULT_WARMUP_SECONDS = 0.5;
const DEFAULT_ROUNDS = 3;
const DEFAULT_IDLE_WAIT_SECONDS = 0;
/** Upper bound on writers, below the 200 connections that scripts/pg-cluster.sh allows. */
const MAX_WRITERS = 150;

export const USAGE = `usage: npm run bench -- [options]

Measures audit-event append throughput: the hash-chained writer against plain INSERTs
into a table of the same shape, with the same number of concurrent writers.

  --backend pglite|postgres|all   backends to measure (default: pglite, plus postgres when DATABASE_URL is set)
  --writers 1,8,32                concurrent writers per case (default: ${DEFAULT_WRITER_COUNTS.join(",")})
  --seconds N                     measured seconds per case and round (default: ${DEFAULT_SECONDS})
  --warmup-seconds N              unmeasured seconds before each case (default: ${DEFAULT_WARMUP_SECONDS})
  --rounds N                      rounds per case; the median round is reported (default: ${DEFAULT_ROUNDS})
  --idle-wait N                   wait up to N seconds for an idle machine before each run, and repeat
                                  a run that other processes slowed down, up to 3 attempts (default: ${DEFAULT_IDLE_WAIT_SECONDS}, off)

DATABASE_URL names a PostgreSQL server; the benchmark creates its own database there
and drops it at the end.`;

/** Parses the benchmark options and throws an Error that names any invalid option. */
export function parseBenchOptions(argv: string[], environment: NodeJS.ProcessEnv): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: "string" },
      writers: { type: "string" },
      seconds: { type: "string" },
      "warmup-seconds": { type: "string" },
      rounds: { type: "string" },
      "idle-wait": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    throw new HelpRequested();
  }

  const databaseUrl = environment["DATABASE_URL"] || undefined;
  const backends = parseBackends(values.backend, databaseUrl);
  return {
    backends,
    writerCounts: values.writers === undefined ? DEFAULT_WRITER_COUNTS : parseWriterCounts(values.writers),
    seconds: parsePositiveNumber("--seconds", values.seconds, DEFAULT_SECONDS),
    warmupSeconds: parseNonNegativeNumber("--warmup-seconds", values["warmup-seconds"], DEFAULT_WARMUP_SECONDS),
    rounds: Math.round(parsePositiveNumber("--rounds", values.rounds, DEFAULT_ROUNDS)),
    idleWaitSeconds: parseNonNegativeNumber("--idle-wait", values["idle-wait"], DEFAULT_IDLE_WAIT_SECONDS),
    databaseUrl,
  };
}

/** Raised for --help, so that the caller prints the usage and exits with 0. */
export class HelpRequested extends Error {
  override name = "HelpRequested";
}

function parseBackends(value: string | undefined, databaseUrl: string | undefined): BackendKind[] {
  if (value === undefined) {
    return databaseUrl ? ["pglite", "postgres"] : ["pglite"];
  }
  const backends: BackendKind[] = value === "all" ? ["pglite", "postgres"] : [];
  if (value !== "all") {
    for (const name of value.split(",")) {
      if (name !== "pglite" && name !== "postgres") {
        throw new Error(`invalid --backend value '${name}': use pglite, postgres or all`);
      }
      backends.push(name);
    }
  }
  if (backends.includes("postgres") && !databaseUrl) {
    throw new Error("--backend postgres needs DATABASE_URL; start a server with scripts/pg-cluster.sh start");
  }
  return backends;
}

function parseWriterCounts(value: string): number[] {
  return value.split(",").map((item) => {
    const count = Number(item);
    if (!Number.isInteger(count) || count < 1 || count > MAX_WRITERS) {
      throw new Error(`invalid --writers value '${item}': use whole numbers from 1 to ${MAX_WRITERS}`);
    }
    return count;
  });
}

function parsePositiveNumber(option: string, value: string | undefined, fallback: number): number {
  const number = parseNonNegativeNumber(option, value, fallback);
  if (number === 0) {
    throw new Error(`invalid ${option} value '${value}': use a number above 0`);
  }
  return number;
}

function parseNonNegativeNumber(option: string, value: string | undefined, fallback: number): number {
  if (value === undefined) {
    return fallback;
  }
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0) {
    throw new Error(`invalid ${option} value '${value}': use a number of 0 or more`);
  }
  return number;
}
