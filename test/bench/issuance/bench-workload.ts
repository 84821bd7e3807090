import { randomUUID } from "node:crypto";
import { type CryptoKey, exportJWK, generateKeyPair } from "jose";

/** Audience and scope of the benchmark's service account. */
export const BENCH_AUDIENCE = "https://orders-db.bench.example.com";
export const BENCH_SCOPE = "orders.read";
/** Lifetime of the benchmark's service account: one day, far beyond any run. */
const ACCOUNT_LIFETIME_MS = 24 * 3600 * 1000;

/** A service account registered over HTTP, with both halves of its ES256 key. */
export interface BenchWorkload {
  accountId: string;
  applicationId: string;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

/**
 * Registers an application, a service account and one ES256 public key through the
 * broker's HTTP API with the admin token, as an operator would.
 */
export async function registerBenchWorkload(address: string, adminToken: string): Promise<BenchWorkload> {
  const operator = async (route: string, body: unknown): Promise<{ id: string }> => {
    const response = await fetch(`${address}${route}`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status !== 201) {
      throw new Error(`POST ${route} failed with ${response.status}: ${text}`);
    }
    return JSON.parse(text) as { id: string };
  };

  const application = await operator("/v1/applications", { name: `bench-orders-${randomUUID()}`, technical_owner: "team-orders@example.com" });
  const account = await operator("/v1/service-accounts", {
    name: `bench-orders-api-${randomUUID()}`,
    application_id: application.id,
    technical_owner: "alice@example.com",
    expires_at: new Date(Date.now() + ACCOUNT_LIFETIME_MS).toISOString(),
    allowed_audiences: [BENCH_AUDIENCE],
    allowed_scopes: [BENCH_SCOPE],
  });
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const kid = `bench-${randomUUID()}`;
  await operator(`/v1/service-accounts/${account.id}/keys`, { jwk: { ...(await exportJWK(publicKey)), kid } });
  return { accountId: account.id, applicationId: application.id, kid, privateKey, publicKey };
}
