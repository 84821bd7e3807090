import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { RequestContext } from "../audit/audit-types.js";
import { type BrokerConfig, ConfigError } from "../config/config.js";
import { type Clock, systemClock } from "../config/clock.js";
import { isOwnerOnly, loadMasterKey, type MasterKey } from "../crypto/master-key.js";
import { type Database, openDatabase } from "../db/database.js";
import { shippedMigrationCount } from "../db/migrations-info.js";
import type { BrokerDeps } from "../deps.js";
import { createLogger, type Logger } from "../logging/logger.js";
import { createMetrics } from "../metrics/metrics.js";
import { keyRetentionSeconds } from "../tokens/key-rotation.js";
import { SigningKeyRing } from "../tokens/signing-key-ring.js";
import { JwksCache } from "../tokens/subject-token.js";
import { AlreadyInitialized, initializeBroker, isInitialized } from "../setup/initialize.js";

export const ADMIN_TOKEN_FILE = "admin-token";

/** An opened, migrated broker database with everything the services need. */
export interface Runtime {
  deps: BrokerDeps;
  database: Database;
  masterKey: MasterKey;
}

/** Opens the configured database, applies migrations and loads the master key. */
export async function openRuntime(
  config: BrokerConfig,
  options: { log?: Logger; clock?: Clock; processMetrics?: boolean } = {},
): Promise<Runtime> {
  const log = options.log ?? createLogger({ level: config.logLevel });
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    log.info({ database: database.kind }, "applying database migrations");
    await database.migrate();
    log.info({ database: database.kind }, "database migrations applied");
    const masterKey = await loadMasterKey(config.masterKey, config.dataDir);
    const clock = options.clock ?? systemClock;
    const deps: BrokerDeps = {
      db: database.db,
      clock,
      log,
      metrics: createMetrics({ processMetrics: options.processMetrics ?? false }),
      config,
      expectedMigrations: shippedMigrationCount(),
      keyRing: new SigningKeyRing(database.db, clock, masterKey.key, keyRetentionSeconds(config)),
      jwks: new JwksCache(),
    };
    return { deps, database, masterKey };
  } catch (error) {
    await database.close();
    throw error;
  }
}

/**
 * Warns when the master key lives beside the data it protects: fine for a laptop, not
 * for production, where BROKER_MASTER_KEY should come from a secret store.
 */
export async function warnAboutMasterKeyFile(log: Logger, masterKey: MasterKey): Promise<void> {
  if (masterKey.source !== "file" || !masterKey.file) {
    return;
  }
  log.warn(
    { file: masterKey.file, created: masterKey.created },
    "master key read from a file in the data directory; set BROKER_MASTER_KEY in production",
  );
  if (!(await isOwnerOnly(masterKey.file))) {
    log.warn({ file: masterKey.file }, "master key file is readable by other users; run chmod 600 on it");
  }
}

/**
 * Initializes an empty database on first start and writes the admin token to
 * `<data dir>/admin-token` with mode 0600. Logs the file's path, never the token.
 */
export async function initializeOnFirstStart(runtime: Runtime): Promise<void> {
  const { deps } = runtime;
  if (await isInitialized(deps.db)) {
    return;
  }
  const context: RequestContext = { actor: "system", role: null, requestId: null, sourceAddress: null };
  try {
    const { adminToken, adminTokenId } = await initializeBroker(deps, runtime.masterKey.key, context, deps.config.signingAlgorithm);
    const file = path.join(deps.config.dataDir, ADMIN_TOKEN_FILE);
    await writeFile(file, `${adminToken}\n`, { mode: 0o600 });
    deps.log.warn({ file, tokenId: adminTokenId }, "broker initialized: the first admin token is in this file; move it to a safe place");
  } catch (error) {
    if (!(error instanceof AlreadyInitialized)) {
      throw error;
    }
    deps.log.info("another broker process initialized the database first");
  }
}

/**
 * Fails start-up when the master key cannot open the active signing key, which happens
 * when BROKER_MASTER_KEY differs from the key that initialized the database. Without
 * this check the broker would start and then fail every token request.
 */
export async function checkMasterKeyOpensSigningKey(runtime: Runtime): Promise<void> {
  try {
    await runtime.deps.keyRing.activeKey();
  } catch (error) {
    await runtime.database.close();
    const source = runtime.masterKey.source === "environment" ? "BROKER_MASTER_KEY" : `the master key file ${runtime.masterKey.file}`;
    throw new ConfigError(
      `${source} cannot open the signing keys in this database (${(error as Error).message}); ` +
        "start with the master key that initialized it",
    );
  }
}
