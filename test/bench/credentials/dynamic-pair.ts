import type { AssertionPool } from "../issuance/assertion-pool.js";
import type { BrokerServer } from "../issuance/broker-server.js";
import { createDynamicSecret } from "./bench-catalogue.js";
import { checkFirstCredential, createCredentialClient, requestAccessToken } from "./credential-client.js";
import type { CredentialOptions } from "./credential-options.js";
import { CREDENTIAL_TTL_SECONDS } from "./local-pair.js";
import { type PairCase, progress, type ProfileTarget, requireOk, runRounds, type Side, type SideName, type SideRun, timedRun } from "./paired-runs.js";
import type { RoleServer } from "./role-server.js";

type BareSide = Extract<SideName, "bare-roles" | "bare-roles-adapter">;

/** What the dynamic pair measured, and the checks of the roles it created. */
export interface DynamicPairResult {
  cases: PairCase[];
  /** Runs after which the broker's roles on the server did not match its 200 responses. */
  roleCountMismatches: string[];
  /** Roles the benchmark created and dropped again, over all runs. */
  rolesDropped: number;
}

/**
 * Measures the dynamic pair at every dynamic concurrency: POST /v1/credentials for a
 * dynamic PostgreSQL secret (side `dynamic`, one role per request) against the bare-role
 * baseline with one connection per request loop (`bare-roles`). The broker's adapter keeps
 * a small pool of admin sessions per secret, so when it held fewer sessions than there
 * are request loops, the baseline also runs on that many connections
 * (`bare-roles-adapter`). After every run the benchmark counts the broker's roles against
 * its 200 responses, then drops every role it created, so each run starts from the same
 * catalogue.
 */
export async function measureDynamicPair(
  broker: BrokerServer,
  pool: AssertionPool,
  accountId: string,
  roles: RoleServer,
  options: CredentialOptions,
  label: string,
): Promise<DynamicPairResult> {
  const target: ProfileTarget = { brokerPid: broker.pid, databaseUrl: roles.databaseUrl };
  const result: DynamicPairResult = { cases: [], roleCountMismatches: [], rolesDropped: 0 };
  const secretName = options.cases.includes("dynamic") ? await createDynamicSecret(broker.address, broker.adminToken, accountId, roles) : undefined;

  if (secretName) {
    const accessToken = await requestAccessToken(broker.address, await pool.take());
    const data = await checkFirstCredential(broker.address, accessToken, secretName, CREDENTIAL_TTL_SECONDS, ["username", "password"]);
    if (!data["username"]!.startsWith(`sb_${roles.brokerNamePrefix}_`) || (await roles.countBrokerRoles()) !== 1) {
      throw new Error(`the first dynamic credential did not create one role named sb_${roles.brokerNamePrefix}_...; check the secret's settings`);
    }
    result.rolesDropped += await roles.dropCreatedRoles();
  }

  for (const concurrency of options.dynamicConcurrencies) {
    let adapterSessions: number | undefined;
    const sides: Side[] = [];
    if (secretName) {
      sides.push({
        name: "dynamic",
        run: async () => {
          const run = await measureDynamicRun(broker, pool, roles, secretName, concurrency, options, target, result);
          // The adapter's pool stays open after the run, so its size shows how many sessions it used.
          adapterSessions = Math.min(await roles.countAdapterSessions(), concurrency);
          progress(`${label} c=${concurrency}: the adapter held ${adapterSessions} admin sessions`);
          result.rolesDropped += await roles.dropCreatedRoles();
          return run;
        },
      });
    }
    if (options.cases.includes("bare-roles")) {
      const bareRun = async (side: BareSide, connections: number) => {
        const run = await measureBareRun(roles, side, connections, options, target);
        result.rolesDropped += await roles.dropCreatedRoles();
        return run;
      };
      sides.push({ name: "bare-roles", run: () => bareRun("bare-roles", concurrency) });
      sides.push({
        name: "bare-roles-adapter",
        run: async () => (adapterSessions !== undefined && adapterSessions < concurrency ? bareRun("bare-roles-adapter", adapterSessions) : undefined),
      });
    }
    result.cases.push(await runRounds(concurrency, sides, options.rounds, label));
  }
  return result;
}

/**
 * Measures POST /v1/credentials for the dynamic secret with one access token per request
 * loop, as the local side does. Then it checks that the server has exactly one new role per
 * 200 response of the warm-up and the measured part.
 */
async function measureDynamicRun(
  broker: BrokerServer,
  pool: AssertionPool,
  roles: RoleServer,
  secretName: string,
  concurrency: number,
  options: CredentialOptions,
  target: ProfileTarget,
  result: DynamicPairResult,
): Promise<SideRun> {
  const accessTokens: string[] = [];
  for (let index = 0; index < concurrency; index += 1) {
    accessTokens.push(await requestAccessToken(broker.address, await pool.take()));
  }

  const client = createCredentialClient(broker.address, secretName, CREDENTIAL_TTL_SECONDS, concurrency);
  let next = 0;
  let issued = 0;
  try {
    const { loop, profile } = await timedRun(options, {
      label: `dynamic c=${concurrency}`,
      concurrency,
      target,
      operation: async () => {
        const accessToken = accessTokens[next % accessTokens.length]!;
        next += 1;
        requireOk("POST /v1/credentials", await client.send(accessToken));
        issued += 1;
        return true;
      },
    });

    const created = await roles.countBrokerRoles();
    if (created !== issued) {
      result.roleCountMismatches.push(`c=${concurrency}: ${issued} credentials issued, but ${created} roles sb_${roles.brokerNamePrefix}_... exist`);
    }
    return { side: "dynamic", concurrency, loop, profile, signedOnDemand: 0 };
  } finally {
    client.close();
  }
}

/** Measures the bare-role baseline on `connections` admin sessions with one loop per session. */
async function measureBareRun(roles: RoleServer, side: BareSide, connections: number, options: CredentialOptions, target: ProfileTarget): Promise<SideRun> {
  const creator = roles.openBareRoleCreator(connections, CREDENTIAL_TTL_SECONDS);
  try {
    const { loop, profile } = await timedRun(options, {
      label: `${side} connections=${connections}`,
      concurrency: connections,
      target,
      operation: () => creator.create(),
    });
    return { side, concurrency: connections, loop, profile, signedOnDemand: 0 };
  } finally {
    await creator.close();
  }
}
