import type { AuditChainer } from "./audit/audit-chainer.js";
import type { BrokerConfig } from "./config/config.js";
import type { Clock } from "./config/clock.js";
import type { DataKeyRing } from "./crypto/data-key-ring.js";
import type { MasterKeyRing } from "./crypto/master-key-ring.js";
import type { Db } from "./db/database.js";
import type { Logger } from "./logging/logger.js";
import type { BrokerMetrics } from "./metrics/metrics.js";
import type { AdapterRegistry } from "./secrets/adapter-registry.js";
import type { SigningKeyRing } from "./tokens/signing-key-ring.js";
import type { JwksCache } from "./tokens/subject-token.js";

/** Dependencies of every service and route, built once per process (or per test). */
export interface BrokerDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  metrics: BrokerMetrics;
  config: BrokerConfig;
  /** Number of migrations shipped, for `/readyz`. */
  expectedMigrations: number;
  /** The broker's signing keys. */
  keyRing: SigningKeyRing;
  /** Key sets of trusted issuers, cached per process. */
  jwks: JwksCache;
  /** The upstream adapters, by name. */
  adapters: AdapterRegistry;
  /** Asks this process's rotation scheduler for a tick now, after a rotation was started; unset where no scheduler runs. */
  kickRotations?: () => void;
  /** Master keys that wrap signing keys and data keys: current first, older ones for opening only. */
  masterKeys: MasterKeyRing;
  /** Data keys: the local adapter's value sealer and the fingerprint key. */
  dataKeys: DataKeyRing;
  /** Links committed audit events into the hash chain; readers flush it to see every event chained. */
  auditChain: AuditChainer;
}
