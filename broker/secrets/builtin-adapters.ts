import type { SecretAdapter } from "../../adapters/contract.js";
import { AwsSecretsManagerAdapter } from "../../adapters/aws-secrets-manager/aws-adapter.js";
import { LocalAdapter } from "../../adapters/local/local-adapter.js";
import { PostgresAdapter } from "../../adapters/postgres/postgres-adapter.js";
import { VaultAdapter } from "../../adapters/vault/vault-adapter.js";
import type { Clock } from "../config/clock.js";
import type { BrokerConfig } from "../config/config.js";
import type { DataKeyRing } from "../crypto/data-key-ring.js";
import type { Logger } from "../logging/logger.js";
import type { BrokerMetrics } from "../metrics/metrics.js";
import { AdapterRegistry } from "./adapter-registry.js";

/**
 * Creates the registry of the adapters a broker process runs with: the local encrypted
 * store, PostgreSQL roles, HashiCorp Vault and AWS Secrets Manager, plus `extra` ones,
 * which replace a built-in adapter of the same name (tests add recording adapters and
 * an AWS adapter with test credentials).
 */
export function createAdapterRegistry(
  deps: { config: BrokerConfig; dataKeys: DataKeyRing; log: Logger; metrics: BrokerMetrics; clock: Clock },
  extra: SecretAdapter[] = [],
): AdapterRegistry {
  const adapters: SecretAdapter[] = [
    new LocalAdapter({ sealer: deps.dataKeys }),
    new PostgresAdapter({ logger: deps.log.child({ module: "postgres-adapter" }), sealer: deps.dataKeys }),
    new VaultAdapter({
      sealer: deps.dataKeys,
      now: () => deps.clock.now(),
      logger: deps.log.child({ module: "vault-adapter" }),
      onTokenEvent: (event) => deps.metrics.vaultTokenEvents.inc({ event }),
      deriveSeed: (info) => deps.dataKeys.derivedSecret(info),
    }),
    new AwsSecretsManagerAdapter(),
    ...extra,
  ];
  return new AdapterRegistry(adapters, { timeoutMs: deps.config.adapterTimeoutMs, log: deps.log.child({ module: "adapters" }), metrics: deps.metrics });
}
