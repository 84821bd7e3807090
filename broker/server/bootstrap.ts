import { writeFile } from "node:fs/promises";
import path from "node:path";
import { AuditChainer } from "../audit/audit-chainer.js";
import type { RequestContext } from "../audit/audit-types.js";
import { type BrokerConfig, ConfigError } from "../config/config.js";
import { type Clock, systemClock } from "../config/clock.js";
import { DataKeyRing } from "../crypto/data-key-ring.js";
import { isOwnerOnly, loadMasterKey } from "../crypto/master-key.js";
import type { MasterKeyRing } from "../crypto/master-key-ring.js";
import { describeMissingMasterKeys, masterKeyUsage } from "../crypto/master-key-usage.js";
import { type Database, openDatabase } from "../db/database.js";
import { shippedMigrationCount } from "../db/migrations-info.js";
import type { BrokerDeps } from "../deps.js";
import { auditDeps } from "../http/auth-middleware.js";
import { createLogger, type Logger } from "../logging/logger.js";
import { createMetrics } from "../metrics/metrics.js";
import { keyRetentionSeconds } from "../tokens/key-rotation.js";
import { SigningKeyRing } from "../tokens/signing-key-ring.js";
import { createAdapterRegistry } from "../secrets/builtin-adapters.js";
import { JwksCache } from "../tokens/subject-token.js";
import { AlreadyInitialized, initializeBroker, isInitialized } from "../setup/initialize.js";

export const ADMIN_TOKEN_FILE = "admin-token";

/** An opened, migrated broker database with everything the services need. */
export interface Runtime {
  deps: BrokerDeps;
  database: Database;
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
    const masterKeys = await loadMasterKey(config.masterKey, config.dataDir);
    const clock = options.clock ?? systemClock;
    const metrics = createMetrics({ processMetrics: options.processMetrics ?? false });
    const auditChain = new AuditChainer({ db: database.db, log });
    const dataKeys = new DataKeyRing({ masterKeys, log, ...auditDeps({ db: database.db, clock, metrics, auditChain }) });
    const deps: BrokerDeps = {
      db: database.db,
      clock,
      log,
      metrics,
      config,
      expectedMigrations: shippedMigrationCount(),
      keyRing: new SigningKeyRing(database.db, clock, masterKeys, keyRetentionSeconds(config)),
      masterKeys,
      dataKeys,
      auditChain,
      jwks: new JwksCache(),
      adapters: createAdapterRegistry({ config, dataKeys, log, metrics, clock }),
    };
    return { deps, database };
  } catch (error) {
    await database.close();
    throw error;
  }
}

/** Chains the audit events still pending and closes the database. */
export async function closeRuntime(runtime: Runtime): Promise<void> {
  try {
    await runtime.deps.auditChain.stop();
  } finally {
    await runtime.database.close();
  }
}

/**
 * Warns when the master key lives beside the data it protects: fine for a laptop, not
 * for production, where BROKER_MASTER_KEY should come from a secret store.
 */
export async function warnAboutMasterKeyFile(log: Logger, masterKeys: MasterKeyRing): Promise<void> {
  if (masterKeys.source !== "file" || !masterKeys.file) {
    return;
  }
  log.warn(
    { file: masterKeys.file, created: masterKeys.created, masterKeyId: masterKeys.currentKeyId },
    "master key read from a file in the data directory; set BROKER_MASTER_KEY in production",
  );
  if (!(await isOwnerOnly(masterKeys.file))) {
    log.warn({ file: masterKeys.file }, "master key file is readable by other users; run chmod 600 on it");
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
    const { adminToken, adminTokenId } = await initializeBroker(deps, deps.masterKeys, context, deps.config.signingAlgorithm);
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
 * Fails start-up when the master keys cannot open the keys stored in the database, which
 * happens when BROKER_MASTER_KEY (or the key file) lacks a key that wrapped them, such as
 * the key that initialized the database. Without this check the broker would start and
 * then fail every token request and every stored value.
 */
export async function checkMasterKeyOpensStoredKeys(runtime: Runtime): Promise<void> {
  const { deps } = runtime;
  try {
    const missing = describeMissingMasterKeys(await masterKeyUsage(deps.db, deps.masterKeys), deps.masterKeys);
    if (missing) {
      throw new Error(missing);
    }
    await deps.keyRing.activeKey();
    const dataKeyCount = await deps.dataKeys.load();
    deps.log.info({ masterKeyId: deps.masterKeys.currentKeyId, masterKeyIds: deps.masterKeys.keyIds, dataKeyCount }, "master keys open the stored keys");
  } catch (error) {
    await runtime.database.close();
    throw new ConfigError(
      `${deps.masterKeys.origin} cannot open the keys stored in this database: ${(error as Error).message}; ` +
        "start with the master key that initialized it, listed after the current key if you are rotating",
    );
  }
}
