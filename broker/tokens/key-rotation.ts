import type { RecordAudit } from "../audit/audit-writer.js";
import type { BrokerConfig } from "../config/config.js";
import type { Clock } from "../config/clock.js";
import type { Executor } from "../db/database.js";
import type { SigningKeyRing } from "./signing-key-ring.js";

/** Maximum publish delay of a rotation, in seconds: one day, the same bound as BROKER_KEY_PUBLISH_DELAY. */
export const MAX_KEY_PUBLISH_DELAY_SECONDS = 86_400;

/**
 * How long a superseded signing key stays in the JWKS: the longest TTL a token it
 * signed can have, plus the clock skew verifiers tolerate.
 */
export function keyRetentionSeconds(config: BrokerConfig): number {
  return config.tokenTtlCap + config.clockSkew;
}

/**
 * Adds a signing key that is published now and signs from `now + publishDelay`, so that
 * verifiers caching the JWKS (jose and jwks-rsa keep it 10 minutes) know the key
 * before the first token signed with it reaches them.
 */
export async function rotateSigningKey(
  tx: Executor,
  clock: Clock,
  record: RecordAudit,
  keyRing: SigningKeyRing,
  config: BrokerConfig,
  publishDelaySeconds: number = config.keyPublishDelay,
): Promise<{ kid: string; alg: string; activates_at: string }> {
  const activatesAt = new Date(clock.now().getTime() + publishDelaySeconds * 1000);
  const kid = await keyRing.addKey(tx, config.signingAlgorithm, activatesAt);
  record({ action: "signing_key.rotate", target: kid, details: { alg: config.signingAlgorithm, activates_at: activatesAt.toISOString() } });
  return { kid, alg: config.signingAlgorithm, activates_at: activatesAt.toISOString() };
}
