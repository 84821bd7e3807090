import { AuditChainer } from "../../../broker/audit/audit-chainer.js";
import { randomBytes } from "node:crypto";
import { SYSTEM_CONTEXT } from "../../../broker/audit/audit-types.js";
import { loadConfig } from "../../../broker/config/config.js";
import { systemClock } from "../../../broker/config/clock.js";
import { DataKeyRing } from "../../../broker/crypto/data-key-ring.js";
import { MasterKeyRing } from "../../../broker/crypto/master-key-ring.js";
import type { Db } from "../../../broker/db/database.js";
import { shippedMigrationCount } from "../../../broker/db/migrations-info.js";
import type { BrokerDeps } from "../../../broker/deps.js";
import { auditDeps } from "../../../broker/http/auth-middleware.js";
import { createLogger } from "../../../broker/logging/logger.js";
import { createMetrics } from "../../../broker/metrics/metrics.js";
import { createAdapterRegistry } from "../../../broker/secrets/builtin-adapters.js";
import { initializeBroker, isInitialized } from "../../../broker/setup/initialize.js";
import { keyRetentionSeconds } from "../../../broker/tokens/key-rotation.js";
import { SigningKeyRing } from "../../../broker/tokens/signing-key-ring.js";
import { JwksCache } from "../../../broker/tokens/subject-token.js";

/** Creates a ring of one random master key, which every in-process runtime of a run shares, as replicas share BROKER_MASTER_KEY. */
export function newMasterKeys(): MasterKeyRing {
  return new MasterKeyRing([randomBytes(32)], "environment");
}

/**
 * Builds the services of a broker process on `db`, as `openRuntime` in
 * broker/server/bootstrap.ts does, but on a database handle that the benchmark opened, so
 * that it chooses the pool size. The configuration is that of `serve` with no
 * environment variables set (loadConfig defaults) and the system clock. Logs at level
 * warn go to standard error.
 */
export function benchDeps(db: Db, masterKeys: MasterKeyRing): BrokerDeps {
  const config = loadConfig({ LOG_LEVEL: "warn" });
  const log = createLogger({ level: config.logLevel, destination: process.stderr });
  const clock = systemClock;
  const metrics = createMetrics({ processMetrics: false });
  const auditChain = new AuditChainer({ db, log });
  const dataKeys = new DataKeyRing({ masterKeys, log, ...auditDeps({ db, clock, metrics, auditChain }) });
  return {
    db,
    clock,
    log,
    metrics,
    config,
    expectedMigrations: shippedMigrationCount(),
    keyRing: new SigningKeyRing(db, clock, masterKeys, keyRetentionSeconds(config)),
    masterKeys,
    auditChain,
    dataKeys,
    jwks: new JwksCache(),
    adapters: createAdapterRegistry({ config, dataKeys, log, metrics, clock }),
  };
}

/** Initializes an empty database as the first `serve` start does (signing key, admin token), then loads the data keys. */
export async function initializeBenchBroker(deps: BrokerDeps): Promise<void> {
  if (!(await isInitialized(deps.db))) {
    await initializeBroker(auditDeps(deps), deps.masterKeys, SYSTEM_CONTEXT, deps.config.signingAlgorithm);
  }
  await deps.dataKeys.load();
}
