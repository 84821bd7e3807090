import path from "node:path";
import { parseArgs } from "node:util";
import type { BackendKind } from "../issuance/issuance-options.js";
import { SKEWED_OTHER_CORES } from "../writers.js";
import { MAX_ATTEMPTS } from "./paired-runs.js";

export type { BackendKind };

/**
 * The measurements a run can include. `token` (POST /v1/token) is the baseline of `local`
 * (POST /v1/credentials for a local static secret), and `bare-roles` (CREATE ROLE and GRANT
 * sent straight to PostgreSQL) is the baseline of `dynamic` (POST /v1/credentials for a
 * dynamic PostgreSQL secret).
 */
export const CASES = ["token", "local", "dynamic", "bare-roles"] as const;
export type CaseName = (typeof CASES)[number];

/** What one `npm run bench:credentials` measures, from its command-line options. */
export interface CredentialOptions {
  backends: BackendKind[];
  cases: CaseName[];
  /** Concurrent request loops of the token and local-credential cases. */
  concurrencies: number[];
  /** Concurrent request loops of the dynamic case, and connections of its bare-role baseline. */
  dynamicConcurrencies: number[];
  /** Measured time per run, in seconds. */
  seconds: number;
  /** Unmeasured time before each run, so that connections and JIT are warm, in seconds. */
  warmupSeconds: number;
  /** Runs per case and side. The report shows the median. */
  rounds: number;
  /** Backend whose broker runs the dynamic cases, or undefined to skip them. */
  dynamicBackend: BackendKind | undefined;
  /** Why the dynamic cases are skipped, when they are. */
  dynamicSkipReason: string | undefined;
  /** Maximum wait for an idle machine before each timed run, in seconds, or 0 to not wait. */
  idleWaitSeconds: number;
  /** Directory for V8 CPU profiles of the broker processes, or undefined to not profile them. */
  cpuProfileDir: string | undefined;
  /** PostgreSQL server of the broker's own database (DATABASE_URL). */
  databaseUrl: string | undefined;
  /** PostgreSQL server on which dynamic roles are created: TEST_POSTGRES_URL, else DATABASE_URL. */
  rolesServerUrl: string | undefined;
}

const DEFAULT_CONCURRENCIES = [1, 8, 32];
const DEFAULT_DYNAMIC_CONCURRENCIES = [1, 8];
const DEFAULT_SECONDS = 1.5;
const DEFAULT_WARMUP_SECONDS = 0.5;
const DEFAULT_ROUNDS = 3;
const DEFAULT_IDLE_WAIT_SECONDS = 0;
/** Upper bound on concurrent loops, because each keeps one connection to the broker or to PostgreSQL open. */
const MAX_CONCURRENCY = 150;
const MAX_ROUNDS = 20;

export const USAGE = `usage: npm run bench:credentials -- [options]

Measures leased-credential issuance through POST /v1/credentials of a broker process:
for a local static secret against access-token issuance (POST /v1/token) of the same
broker, and for a dynamic PostgreSQL secret against CREATE ROLE and GRANT sent straight
to the same PostgreSQL server over as many connections. Each pair runs in the same
process, with the same concurrency, in alternating order.

  --backend pglite|postgres|all   broker database (default: pglite, plus postgres when DATABASE_URL is set)
  --cases LIST                    comma-separated subset of ${CASES.join(", ")} (default: all)
  --concurrency 1,8,32            concurrent request loops of the token and local cases (default: ${DEFAULT_CONCURRENCIES.join(",")})
  --dynamic-concurrency 1,8       concurrent request loops of the dynamic case, and connections of its
                                  baseline (default: ${DEFAULT_DYNAMIC_CONCURRENCIES.join(",")})
  --dynamic-backend B             broker database for the dynamic cases: pglite, postgres or none
                                  (default: postgres when DATABASE_URL is set, else pglite)
  --seconds N                     measured seconds per run (default: ${DEFAULT_SECONDS})
  --warmup-seconds N              unmeasured seconds before each run (default: ${DEFAULT_WARMUP_SECONDS})
  --rounds N                      runs per case and side; the median is reported (default: ${DEFAULT_ROUNDS})
  --idle-wait N                   wait up to N seconds for an idle machine before each timed run, and repeat
                                  a run in which other processes used more than ${SKEWED_OTHER_CORES} cores, up to ${MAX_ATTEMPTS} attempts
                                  (default: ${DEFAULT_IDLE_WAIT_SECONDS}, off); a run starts anyway after N seconds
  --cpu-profile DIR               run each broker process with node --cpu-prof, write its profile under
                                  DIR/<backend>, and report where its CPU time went. Profiling slows the
                                  broker, so use it for a separate diagnostic run, e.g. with --cases local

DATABASE_URL names a PostgreSQL server for the broker's own database; the benchmark creates
a database there and drops it at the end. The dynamic cases create login roles on the
server of TEST_POSTGRES_URL, or of DATABASE_URL when that is unset, and are skipped when
neither is set. That user needs CREATEROLE and CREATEDB. Every role the benchmark creates
is dropped after each run.`;

/** Raised for --help, so that the caller prints the usage and exits with 0. */
export class HelpRequested extends Error {
  override name = "HelpRequested";
}

/** Parses the benchmark options and throws an Error that names any invalid option. */
export function parseCredentialOptions(argv: string[], environment: NodeJS.ProcessEnv): CredentialOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: "string" },
      cases: { type: "string" },
      concurrency: { type: "string" },
      "dynamic-concurrency": { type: "string" },
      "dynamic-backend": { type: "string" },
      seconds: { type: "string" },
      "warmup-seconds": { type: "string" },
      rounds: { type: "string" },
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
  const rolesServerUrl = environment["TEST_POSTGRES_URL"] || databaseUrl;
  const backends = parseBackends(values.backend, databaseUrl);
  const cases = values.cases === undefined ? [...CASES] : parseCases(values.cases);
  const dynamic = parseDynamicBackend(values["dynamic-backend"], databaseUrl, rolesServerUrl, backends, cases);
  return {
    backends,
    cases,
    concurrencies: parseConcurrencies("--concurrency", values.concurrency, DEFAULT_CONCURRENCIES),
    dynamicConcurrencies: parseConcurrencies("--dynamic-concurrency", values["dynamic-concurrency"], DEFAULT_DYNAMIC_CONCURRENCIES),
    seconds: parseNumber("--seconds", values.seconds, DEFAULT_SECONDS, { min: 0.5, max: 600 }),
    warmupSeconds: parseNumber("--warmup-seconds", values["warmup-seconds"], DEFAULT_WARMUP_SECONDS, { min: 0, max: 600 }),
    rounds: parseWholeNumber("--rounds", values.rounds, DEFAULT_ROUNDS, { min: 1, max: MAX_ROUNDS }),
    dynamicBackend: dynamic.backend,
    dynamicSkipReason: dynamic.skipReason,
    idleWaitSeconds: parseNumber("--idle-wait", values["idle-wait"], DEFAULT_IDLE_WAIT_SECONDS, { min: 0, max: 600 }),
    cpuProfileDir: values["cpu-profile"] ? path.resolve(values["cpu-profile"]) : undefined,
    databaseUrl,
    rolesServerUrl,
  };
}

function parseBackends(value: string | undefined, databaseUrl: string | undefined): BackendKind[] {
  if (value === undefined) {
    return databaseUrl ? ["pglite", "postgres"] : ["pglite"];
  }
  const names = value === "all" ? ["pglite", "postgres"] : value.split(",");
  return [...new Set(names.map((name) => parseBackendName("--backend", name, databaseUrl)))];
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

function parseCases(value: string): CaseName[] {
  const cases = value.split(",").map((name) => {
    if (!(CASES as readonly string[]).includes(name)) {
      throw new Error(`invalid --cases value '${name}': use a comma-separated subset of ${CASES.join(", ")}`);
    }
    return name as CaseName;
  });
  return CASES.filter((name) => cases.includes(name));
}

/**
 * Picks the broker database of the dynamic cases. They run on one backend only, because
 * role creation on the PostgreSQL server is the same whichever database the broker uses.
 */
function parseDynamicBackend(
  value: string | undefined,
  databaseUrl: string | undefined,
  rolesServerUrl: string | undefined,
  backends: BackendKind[],
  cases: CaseName[],
): { backend: BackendKind | undefined; skipReason: string | undefined } {
  if (!cases.includes("dynamic") && !cases.includes("bare-roles")) {
    return { backend: undefined, skipReason: "--cases lists neither dynamic nor bare-roles" };
  }
  if (value === "none") {
    return { backend: undefined, skipReason: "--dynamic-backend none" };
  }
  if (!rolesServerUrl) {
    if (value !== undefined) {
      throw new Error("--dynamic-backend needs a PostgreSQL server for the roles: set TEST_POSTGRES_URL or DATABASE_URL");
    }
    return {
      backend: undefined,
      skipReason: "neither TEST_POSTGRES_URL nor DATABASE_URL names a PostgreSQL server to create roles on; start one with scripts/pg-cluster.sh start",
    };
  }

  let backend: BackendKind;
  if (value !== undefined) {
    backend = parseBackendName("--dynamic-backend", value, databaseUrl);
  } else {
    backend = databaseUrl ? "postgres" : "pglite";
  }
  if (!backends.includes(backend)) {
    throw new Error(`--dynamic-backend ${backend} is not among the measured backends (${backends.join(", ")}); add it to --backend`);
  }
  return { backend, skipReason: undefined };
}

function parseConcurrencies(option: string, value: string | undefined, fallback: number[]): number[] {
  if (value === undefined) {
    return fallback;
  }
  return value.split(",").map((item) => {
    const count = Number(item);
    if (!Number.isInteger(count) || count < 1 || count > MAX_CONCURRENCY) {
      throw new Error(`invalid ${option} value '${item}': use whole numbers from 1 to ${MAX_CONCURRENCY}`);
    }
    return count;
  });
}

function parseWholeNumber(option: string, value: string | undefined, fallback: number, range: { min: number; max: number }): number {
  const number = parseNumber(option, value, fallback, range);
  if (!Number.isInteger(number)) {
    throw new Error(`invalid ${option} value '${value}': use a whole number from ${range.min} to ${range.max}`);
  }
  return number;
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
