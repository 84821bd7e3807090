import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import postgres from "postgres";
import { createScratchDatabase } from "../../support/test-database.js";
import { AssertionPool } from "../issuance/assertion-pool.js";
import { registerBenchWorkload } from "../issuance/bench-workload.js";
import { type BrokerServer, startBrokerServer } from "../issuance/broker-server.js";
import { type ProfileSummary, summarizeCpuProfile } from "../issuance/cpu-profile-summary.js";
import { checkFirstToken } from "../issuance/token-client.js";
import type { BackendKind, CredentialOptions } from "./credential-options.js";
import { type DynamicPairResult, measureDynamicPair } from "./dynamic-pair.js";
import { measureLocalPair } from "./local-pair.js";
import { type PairCase, progress } from "./paired-runs.js";
import { openRoleServer, type RoleServer } from "./role-server.js";

/** The installed PGlite package, relative to this file compiled (dist/test/bench/credentials) or as source. */
const PGLITE_PACKAGE_JSON = new URL(
  import.meta.url.includes("/dist/test/") ? "../../../../node_modules/@electric-sql/pglite/package.json" : "../../../node_modules/@electric-sql/pglite/package.json",
  import.meta.url,
);

/** Everything measured with one broker process. */
export interface BackendResult {
  backend: BackendKind;
  /** The broker's database: PGlite, or the PostgreSQL server's version string. */
  databaseVersion: string;
  local: PairCase[];
  dynamic: DynamicPairResult | undefined;
  /** The server the dynamic roles were created on, when the dynamic pair ran. */
  roleServer: { version: string; passwordEncryption: string } | undefined;
  /** Broker log lines at level error or above. */
  brokerErrors: string[];
  /** Where the broker process spent its CPU time, with --cpu-profile. */
  cpuProfile: ProfileSummary | undefined;
}

/**
 * Starts a broker process on `backend`, registers a service account with one ES256 key
 * through the HTTP API, and measures the local pair and, on the dynamic backend, the
 * dynamic pair against it. Removes the broker's data, its scratch database and every role
 * and database on the role server afterwards, also when a run fails.
 */
export async function runBackendSuite(backend: BackendKind, options: CredentialOptions): Promise<BackendResult> {
  const scratch = backend === "postgres" ? await createScratchDatabase("sbcred") : undefined;
  let broker: BrokerServer | undefined;
  let roles: RoleServer | undefined;
  try {
    const profileDir = options.cpuProfileDir ? path.join(options.cpuProfileDir, backend) : undefined;
    if (profileDir) {
      await mkdir(profileDir, { recursive: true });
    }
    broker = await startBrokerServer(scratch?.url, profileDir);
    progress(`${backend}: broker process ${broker.pid} listening on ${broker.address}`);
    const workload = await registerBenchWorkload(broker.address, broker.adminToken);
    const pool = new AssertionPool(workload, broker.address);
    await checkFirstToken(broker.address, await pool.take());

    const localTarget = { brokerPid: broker.pid, databaseUrl: scratch?.url };
    const local = await measureLocalPair(broker, pool, workload.accountId, options, localTarget, backend);

    let dynamic: DynamicPairResult | undefined;
    if (options.dynamicBackend === backend) {
      roles = await openRoleServer(options.rolesServerUrl!);
      progress(`${backend}: dynamic roles on ${roles.host}:${roles.port}/${roles.database}, named sb_${roles.brokerNamePrefix}_...`);
      dynamic = await measureDynamicPair(broker, pool, workload.accountId, roles, options, backend);
    }

    // Stopping first ends the adapter's admin sessions and writes the CPU profile.
    await broker.stop();
    return {
      backend,
      databaseVersion: scratch ? await serverVersion(scratch.url) : await pgliteVersion(),
      local,
      dynamic,
      roleServer: roles ? { version: roles.serverVersion, passwordEncryption: roles.passwordEncryption } : undefined,
      brokerErrors: errorLines(broker.outputTail()),
      cpuProfile: profileDir ? await summarizeCpuProfile(profileDir) : undefined,
    };
  } finally {
    await broker?.cleanup();
    await roles?.close();
    await scratch?.drop();
  }
}

async function serverVersion(url: string): Promise<string> {
  const session = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const [row] = await session<{ version: string }[]>`select version() as version`;
    return row?.version ?? "unknown";
  } finally {
    await session.end({ timeout: 5 });
  }
}

async function pgliteVersion(): Promise<string> {
  try {
    const { version } = JSON.parse(await readFile(PGLITE_PACKAGE_JSON, "utf8")) as { version: string };
    return `PGlite ${version} (PostgreSQL compiled to WASM), inside the broker process`;
  } catch {
    return "PGlite (version unknown), inside the broker process";
  }
}

/** pino writes one JSON object per line; level 50 is error and 60 is fatal. */
function errorLines(output: string): string[] {
  return output.split("\n").filter((line) => /"level":(50|60)\b/.test(line));
}
