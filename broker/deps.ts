import type { BrokerConfig } from "./config/config.js";
import type { Clock } from "./config/clock.js";
import type { Db } from "./db/database.js";
import type { Logger } from "./logging/logger.js";
import type { BrokerMetrics } from "./metrics/metrics.js";
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
}
