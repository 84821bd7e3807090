import { createGrant, createSecret, obtainCredential, workloadWithToken } from "../credentials/credential-fixtures.js";
import type { TestBroker } from "../support/test-broker.js";

/**
 * Creates activity for each activity file of a pack. A workload obtains an access token
 * and a credential for a granted secret with a rotation policy, and a request with an
 * invalid token records a denied authentication. Then the clock advances by one second.
 */
export async function seedEvidenceActivity(broker: TestBroker): Promise<void> {
  const { workload, accessToken } = await workloadWithToken(broker);
  const secret = await createSecret(broker, { rotation: { max_age: 90 * 86_400 } });
  await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name, scopes: ["secrets:read"] });
  await obtainCredential(broker, accessToken, { secret: secret.name, ttl: 600 });
  await broker.request("GET", "/v1/leases", { token: "not-a-token" });
  broker.clock.advance(1000);
}
