import type { RequestContext } from "../../../broker/audit/audit-types.js";
import type { BrokerDeps } from "../../../broker/deps.js";
import { SecretCreate } from "../../../broker/secrets/secret-schemas.js";
import { createSecret } from "../../../broker/secrets/secrets-service.js";

/** Rotation policy of the secrets whose rotations are timed: due one hour after each rotation. */
export const HOURLY_MAX_AGE = { max_age: 3600 };
/**
 * Rotation policies of the secrets that fill the database while ticks are timed, in
 * turn: rotate at 30 days of age, or every Monday at 03:00 Paris time within one hour
 * and at 90 days at the latest. Both put `next_rotation_at` days ahead, so none is due.
 */
const ESTATE_POLICIES = [{ max_age: 30 * 86_400 }, { schedule: "0 3 * * 1", time_zone: "Europe/Paris", window: 3600, max_age: 90 * 86_400 }];

/** The operator that in-process creations are recorded under, as an admin request would be. */
const BENCH_OPERATOR: RequestContext = { actor: "operator:bench", role: "admin", requestId: null, sourceAddress: "127.0.0.1" };

/** Body of POST /v1/secrets for a local static secret with a generated 32-character value. */
export function localSecretBody(name: string, rotation: Record<string, unknown>): Record<string, unknown> {
  return { name, adapter: "local", kind: "static", owner: "team-bench", generate: { length: 32 }, rotation };
}

/** Returns the estate policy of the `index`-th secret. */
export function estatePolicy(index: number): Record<string, unknown> {
  return ESTATE_POLICIES[index % ESTATE_POLICIES.length]!;
}

/**
 * Creates one secret per name through POST /v1/secrets, spreading the requests over the
 * given broker addresses with `concurrency` requests in flight, and returns the ids in
 * the order of `names`. Throws on the first response other than 201.
 */
export async function createSecretsOverHttp(
  addresses: string[],
  adminToken: string,
  names: string[],
  rotation: Record<string, unknown>,
  concurrency: number,
): Promise<string[]> {
  return forEachConcurrently(names, concurrency, async (name, index) => {
    const address = addresses[index % addresses.length]!;
    const response = await fetch(`${address}/v1/secrets`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify(localSecretBody(name, rotation)),
    });
    const text = await response.text();
    if (response.status !== 201) {
      throw new Error(`POST /v1/secrets for ${name} on ${address} returned ${response.status}: ${text}`);
    }
    return (JSON.parse(text) as { id: string }).id;
  });
}

/**
 * Creates one secret per name with `createSecret`, the service behind POST /v1/secrets,
 * with `concurrency` creations in flight, and returns the ids in the order of `names`.
 * `policyOf` gives the rotation policy of the secret at each index.
 */
export async function createSecretsInProcess(
  deps: BrokerDeps,
  names: string[],
  policyOf: (index: number) => Record<string, unknown>,
  concurrency: number,
): Promise<string[]> {
  return forEachConcurrently(names, concurrency, async (name, index) => {
    const input = SecretCreate.parse(localSecretBody(name, policyOf(index)));
    return (await createSecret(deps, BENCH_OPERATOR, input)).id;
  });
}

/** Runs `work` for every item with at most `concurrency` calls in flight, and returns the results in the order of `items`. */
export async function forEachConcurrently<T, R>(items: T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const loop = async () => {
    for (let index = next++; index < items.length; index = next++) {
      results[index] = await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, loop));
  return results;
}

/** Returns `count` secret names under `prefix`, such as `bench/rot-r1-e/000042`. */
export function secretNames(prefix: string, count: number): string[] {
  const digits = String(count - 1).length;
  return Array.from({ length: count }, (_, index) => `${prefix}${String(index).padStart(digits, "0")}`);
}
