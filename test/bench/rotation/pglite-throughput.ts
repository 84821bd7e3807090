import { newClaimOwner, ROTATION_CONCURRENCY, runRotationTick } from "../../../broker/rotation/rotation-scheduler.js";
import { openPgliteBenchDatabase } from "../bench-database.js";
import { benchDeps, initializeBenchBroker, newMasterKeys } from "./bench-runtime.js";
import type { RotationOptions } from "./rotation-options.js";
import { createSecretsInProcess, HOURLY_MAX_AGE } from "./secret-catalogue.js";
import { type RoundDriver, runRound, type ThroughputCase, type ThroughputRound } from "./throughput-round.js";

/**
 * Measures one in-process scheduler on PGlite in a temporary data directory, the storage
 * that `serve` uses without DATABASE_URL. Several processes cannot share one PGlite
 * database, so this case has one. Ticks run back to back with `runRotationTick` until
 * one finds nothing to do, so there is no wait for a cron tick. Secrets are created with
 * `createSecret`, the service behind POST /v1/secrets.
 */
export async function measurePgliteThroughput(options: RotationOptions): Promise<ThroughputCase> {
  const database = await openPgliteBenchDatabase();
  try {
    const deps = benchDeps(database.db, newMasterKeys());
    await initializeBenchBroker(deps);
    const owner = newClaimOwner();
    const driver: RoundDriver = {
      db: database.db,
      sampleUrl: undefined,
      brokerPids: [],
      processes: 1,
      concurrency: ROTATION_CONCURRENCY,
      createSecrets: (names) => createSecretsInProcess(deps, names, () => HOURLY_MAX_AGE, options.createConcurrency),
      runDueRotations: async (secretIds) => {
        // A tick starts at most ROTATION_ENQUEUE_BATCH rotations, so a large round needs several ticks.
        for (let tick = 0; tick <= secretIds.length; tick += 1) {
          const result = await runRotationTick(deps, owner);
          if (result.started === 0 && result.outcomes.length === 0) {
            return;
          }
        }
        throw new Error(`ticks still found work after ${secretIds.length + 1} ticks for ${secretIds.length} due secrets`);
      },
      completedByProcess: async () => undefined,
    };

    const rounds: ThroughputRound[] = [];
    const problems: string[] = [];
    let created = { secrets: 0, seconds: 0 };
    for (let round = 1; round <= options.rounds; round += 1) {
      const { result, createdSeconds } = await runRound(driver, { prefix: `bench/pglite-r${round}-`, round, secrets: options.secrets, idleWaitSeconds: options.idleWaitSeconds }, problems);
      rounds.push(result);
      created = { secrets: created.secrets + 2 * options.secrets, seconds: created.seconds + createdSeconds };
      console.error(
        `  pglite in-process round=${round}: baseline ${Math.round(result.baseline.flipsPerSecond)} flips/s, engine ${Math.round(result.engine.rotationsPerSecond)} rotations/s`,
      );
    }
    await deps.adapters.close();
    return { backend: "pglite", processes: 1, concurrency: ROTATION_CONCURRENCY, secrets: options.secrets, rounds, created, problems, brokerWarnings: [] };
  } finally {
    await database.close();
  }
}
