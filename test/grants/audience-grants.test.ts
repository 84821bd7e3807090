import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { createWorkload, requestToken } from "../tokens/oauth-fixtures.js";
import { createGrant, readLease } from "../credentials/credential-fixtures.js";

const AUDIENCE = "https://payments.example.com";

let broker: TestBroker;

beforeAll(async () => {
  broker = await startTestBroker();
});

afterAll(async () => {
  await broker?.close();
});

describe("audience grants on the token endpoint", () => {
  it("grant allows an extra audience with its scopes and TTL cap", async () => {
    const workload = await createWorkload(broker, { allowed_audiences: [], allowed_scopes: ["orders.read"] });
    const grant = await createGrant(broker, { service_account_id: workload.accountId, audience: AUDIENCE, scopes: ["payments.charge"], max_ttl: 120 });

    const response = await requestToken(broker, workload, { audience: AUDIENCE });

    expect(response.status, response.text).toBe(200);
    expect(response.json).toMatchObject({ expires_in: 120, scope: "payments.charge" });
    expect(decodeJwt(response.json.access_token).aud).toBe(AUDIENCE);
    expect((await readLease(broker, response.json.lease_id)).grant_id).toBe(grant.id);
  });

  it("missing or ended grant gives invalid_target", async () => {
    const workload = await createWorkload(broker, { allowed_audiences: [] });
    const refusedWithout = await requestToken(broker, workload, { audience: AUDIENCE });
    expect(refusedWithout.status).toBe(400);
    expect(refusedWithout.json.error).toBe("invalid_target");

    const ending = new Date(broker.clock.now().getTime() + 60_000).toISOString();
    const grant = await createGrant(broker, { service_account_id: workload.accountId, audience: AUDIENCE, not_after: ending });
    expect((await requestToken(broker, workload, { audience: AUDIENCE })).status).toBe(200);

    broker.clock.advance(61_000);
    const refusedEnded = await requestToken(broker, workload, { audience: AUDIENCE });
    expect(refusedEnded.json.error).toBe("invalid_target");
    expect(refusedEnded.json.error_description).toContain(`${grant.id} (expired)`);
  });

  it("token lease ends with its grant", async () => {
    const workload = await createWorkload(broker, { allowed_audiences: [] });
    const notAfter = new Date(broker.clock.now().getTime() + 300_000).toISOString();
    const grant = await createGrant(broker, { service_account_id: workload.accountId, audience: AUDIENCE, not_after: notAfter });
    const token = (await requestToken(broker, workload, { audience: AUDIENCE })).json;

    const lease = await readLease(broker, token.lease_id);
    expect(lease.max_expires_at).toBe(notAfter);

    await broker.request("POST", `/v1/grants/${grant.id}/revoke`, { token: broker.tokens.operator });
    expect((await readLease(broker, token.lease_id)).status).toBe("revoked");
  });

  it("allowed audience needs no grant", async () => {
    const workload = await createWorkload(broker, { allowed_audiences: [AUDIENCE] });
    const response = await requestToken(broker, workload, { audience: AUDIENCE });

    expect(response.status, response.text).toBe(200);
    expect((await readLease(broker, response.json.lease_id)).grant_id).toBeNull();
  });
});
