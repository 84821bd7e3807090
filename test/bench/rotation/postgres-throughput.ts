import { setTimeout as sleep } from "node:timers/promises";
import { ROTATION_CONCURRENCY } from "../../../broker/rotation/rotation-scheduler.js";
import { openPostgresBenchDatabase } from "../bench-database.js";
import { logLines, type ReplicaSet, startReplicaSet } from "./broker-replicas.js";
import { rotationIdsOf, waitForRotations } from "./due-rotations.js";
import type { RotationOptions } from "./rotation-options.js";
import { HOURLY_MAX_AGE, createSecretsOverHttp } from "./secret-catalogue.js";
import { type RoundDriver, runRound, type ThroughputCase, type ThroughputRound } from "./throughput-round.js";

/** Time allowed for the rotations of one round: a fixed part plus a part per rotation, in milliseconds. */
const ROUND_TIMEOUT_BASE_MS = 60_000;
const ROUND_TIMEOUT_PER_ROTATION_MS = 100;
/** Time for the processes' pino output, written asynchronously, to reach the pipes before the logs are read, in milliseconds. */
const LOG_FLUSH_MS = 300;
/** The warning that the first process logs when it initializes the database, which every run expects. */
const INITIALIZED_MESSAGE = "broker initialized: the first admin token is in this file; move it to a safe place";
/** Log messages that show a rotation did not run as it should. */
const FAILURE_MESSAGES = new Set(["rotation step failed", "rotation tick failed; the next tick tries again", "rotation claim lost to another process; stopping here"]);

/**
 * Measures `processes` real `serve` processes that share a new database on the
 * PostgreSQL server of `serverUrl`, with a rotation tick every second. Secrets are
 * created through POST /v1/secrets. The baseline's pool has one connection per flip in
 * flight, as many as the processes' rotations in flight.
 */
export async function measurePostgresThroughput(serverUrl: string, processes: number, options: RotationOptions): Promise<ThroughputCase> {
  const concurrency = ROTATION_CONCURRENCY * processes;
  // One more connection for the polls that wait for the rotations.
  const database = await openPostgresBenchDatabase(serverUrl, concurrency + 1);
  let replicaSet: ReplicaSet | undefined;
  try {
    replicaSet = await startReplicaSet(database.url!, processes);
    const set = replicaSet;
    const addresses = set.replicas.map((replica) => replica.address);
    const driver: RoundDriver = {
      db: database.db,
      sampleUrl: database.url,
      brokerPids: set.replicas.map((replica) => replica.pid),
      processes,
      concurrency,
      createSecrets: (names) => createSecretsOverHttp(addresses, set.adminToken, names, HOURLY_MAX_AGE, options.createConcurrency),
      runDueRotations: async (secretIds) => {
        await waitForRotations(database.db, secretIds, ROUND_TIMEOUT_BASE_MS + ROUND_TIMEOUT_PER_ROTATION_MS * secretIds.length);
      },
      completedByProcess: async (secretIds) => {
        const ids = await rotationIdsOf(database.db, secretIds);
        await sleep(LOG_FLUSH_MS);
        return set.replicas.map(
          (replica) => logLines(replica).filter((line) => line["msg"] === "rotation completed" && ids.has(String(line["rotationId"]))).length,
        );
      },
    };

    const rounds: ThroughputRound[] = [];
    const problems: string[] = [];
    let created = { secrets: 0, seconds: 0 };
    for (let round = 1; round <= options.rounds; round += 1) {
      const { result, createdSeconds } = await runRound(driver, { prefix: `bench/p${processes}-r${round}-`, round, secrets: options.secrets, idleWaitSeconds: options.idleWaitSeconds }, problems);
      rounds.push(result);
      created = { secrets: created.secrets + 2 * options.secrets, seconds: created.seconds + createdSeconds };
      console.error(
        `  postgres processes=${processes} round=${round}: baseline ${Math.round(result.baseline.flipsPerSecond)} flips/s, ` +
          `engine ${Math.round(result.engine.rotationsPerSecond)} rotations/s (first start after ${result.engine.firstStartMs} ms)`,
      );
    }

    return { backend: "postgres", processes, concurrency, secrets: options.secrets, rounds, created, problems, brokerWarnings: brokerWarnings(set) };
  } finally {
    await replicaSet?.stop();
    await database.close();
  }
}

/** Lines at level warn (40) or above, and lines that report a failed step or a lost claim, except the expected initialization warning. */
function brokerWarnings(set: ReplicaSet): string[] {
  return set.replicas.flatMap((replica) =>
    logLines(replica)
      .filter((line) => line["msg"] !== INITIALIZED_MESSAGE && (Number(line["level"]) >= 40 || FAILURE_MESSAGES.has(String(line["msg"]))))
      .map((line) => `pid ${replica.pid}: ${String(line["msg"])}`),
  );
}
