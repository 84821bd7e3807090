import { decodeJwt } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { expectProblem, tokenIdOf } from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker, type TestResponse } from "../support/test-broker.js";
import { createWorkload, introspectAsAuditor, issueToken, withAuditEvents, type Workload } from "../tokens/oauth-fixtures.js";

const T0 = Date.parse(TEST_NOW);
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

describe("lease renewal", () => {
  let broker: TestBroker;
  let workload: Workload;
  let neighbour: Workload;

  beforeAll(async () => {
    broker = await startTestBroker();
    workload = await createWorkload(broker, { allowed_audiences: ["https://db.orders.example.com"] });
    neighbour = await createWorkload(broker);
  });

  afterAll(async () => {
    await broker.close();
  });

  afterEach(() => {
    broker.clock.set(TEST_NOW);
  });

  function renew(leaseId: string, token: string, body: unknown = {}): Promise<TestResponse> {
    return broker.request("POST", `/v1/leases/${leaseId}/renew`, { token, body });
  }

  function revoke(leaseId: string, token: string, body: unknown = {}): Promise<TestResponse> {
    return broker.request("POST", `/v1/leases/${leaseId}/revoke`, { token, body });
  }

  async function lease(leaseId: string): Promise<Record<string, unknown>> {
    return (await broker.request("GET", `/v1/leases/${leaseId}`)).json;
  }

  it("workload renews own lease", async () => {
    const token = await issueToken(broker, workload);
    broker.clock.advance(100_000);

    const response = await renew(token.lease_id, token.access_token, { increment: 300 });

    expect(response.status, response.text).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.json).toMatchObject({ lease_id: token.lease_id, lease_duration: 300, renewable: true, expires_at: at(400), warnings: [] });
    expect(response.json.access_token).not.toBe(token.access_token);
    expect(await lease(token.lease_id)).toMatchObject({ expires_at: at(400), renew_count: 1, last_renewed_at: at(100), issued_at: TEST_NOW });
  });

  it("renewed token carries new times and jti", async () => {
    const token = await issueToken(broker, workload, { audience: "https://db.orders.example.com" });
    broker.clock.advance(100_000);

    const response = await renew(token.lease_id, broker.tokens.operator, { increment: 300 });

    const before = decodeJwt(token.access_token);
    const after = decodeJwt(response.json.access_token);
    expect(after.iat).toBe(T0 / 1000 + 100);
    expect(after.exp).toBe(T0 / 1000 + 400);
    expect(after.jti).not.toBe(before.jti);
    expect(after.aud).toBe("https://db.orders.example.com");
    expect(after["scope"]).toBe(before["scope"]);
    expect(after["lease_id"]).toBe(token.lease_id);
  });

  it("renewal writes audit event", async () => {
    const token = await issueToken(broker, workload);

    const { response, events } = await withAuditEvents(broker, () => renew(token.lease_id, token.access_token, { increment: 120 }));

    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ action: "lease.renew", outcome: "success", target: token.lease_id, actor: `service_account:${workload.accountId}` });
    expect(events[0]!.details).toMatchObject({ requested: 120, granted: 120, capped: false, jti: decodeJwt(response.json.access_token).jti });
    expect(JSON.stringify(events)).not.toContain(response.json.access_token);
  });

  it("renewal without increment uses account TTL", async () => {
    const token = await issueToken(broker, workload, { ttl: "60" });

    const response = await renew(token.lease_id, token.access_token);

    expect(response.json.lease_duration).toBe(900);
    expect(response.json.warnings).toEqual([]);
  });

  it("renewal without body accepted", async () => {
    const token = await issueToken(broker, workload, { ttl: "60" });

    const response = await broker.request("POST", `/v1/leases/${token.lease_id}/renew`, { token: token.access_token });

    expect(response.status, response.text).toBe(200);
    expect(response.json.lease_duration).toBe(900);
  });

  it("renewal refused after scope removed", async () => {
    const narrowed = await createWorkload(broker, { allowed_scopes: ["orders.read", "orders.write"] });
    const token = await issueToken(broker, narrowed, { scope: "orders.write" });
    await broker.request("PATCH", `/v1/service-accounts/${narrowed.accountId}`, { body: { allowed_scopes: ["orders.read"] } });

    const response = await renew(token.lease_id, broker.tokens.operator, { increment: 300 });

    expectProblem(response, 409, "invalid_state");
    expect(response.json.detail).toMatch(/carries scope orders\.write, which service account sa_\w+ is no longer allowed/);
    expect(await lease(token.lease_id)).toMatchObject({ renew_count: 0 });
  });

  it("renewal refused after audience removed", async () => {
    const narrowed = await createWorkload(broker, { allowed_audiences: ["https://db.orders.example.com"] });
    const token = await issueToken(broker, narrowed, { audience: "https://db.orders.example.com" });
    await broker.request("PATCH", `/v1/service-accounts/${narrowed.accountId}`, { body: { allowed_audiences: [] } });

    const response = await renew(token.lease_id, broker.tokens.operator, { increment: 300 });

    expectProblem(response, 409, "invalid_state");
    expect(response.json.detail).toMatch(/is for audience https:\/\/db\.orders\.example\.com, which service account sa_\w+ is no longer allowed/);
  });

  it("broker audience still renews after audiences cleared", async () => {
    const narrowed = await createWorkload(broker, { allowed_audiences: ["https://db.orders.example.com"] });
    const token = await issueToken(broker, narrowed);
    await broker.request("PATCH", `/v1/service-accounts/${narrowed.accountId}`, { body: { allowed_audiences: [] } });

    const response = await renew(token.lease_id, broker.tokens.operator, { increment: 300 });

    expect(response.status, response.text).toBe(200);
  });

  it("access token on operator route explained", async () => {
    const token = await issueToken(broker, workload);

    const response = await broker.request("GET", "/v1/leases", { token: token.access_token });

    expectProblem(response, 401, "unauthenticated");
    expect(response.json.detail).toMatch(/takes an operator token, not a JWT/);
    expect(response.text).not.toContain(token.access_token);
  });

  it("increment above account TTL capped with warning", async () => {
    const token = await issueToken(broker, workload);

    const response = await renew(token.lease_id, token.access_token, { increment: 3600 });

    expect(response.status, response.text).toBe(200);
    expect(response.json.lease_duration).toBe(900);
    expect(response.json.warnings).toHaveLength(1);
    expect(response.json.warnings[0]).toMatch(/TTL of 3600s exceeded the effective max TTL; capped to 900s by service account sa_[0-9a-f]+'s max_token_ttl of 900s/);
  });

  it("renewal capped at lease max TTL", async () => {
    let token = await issueToken(broker, workload);
    let response: TestResponse | undefined;

    for (let elapsed = 800; elapsed <= 3200; elapsed += 800) {
      broker.clock.set(at(elapsed));
      response = await renew(token.lease_id, token.access_token, { increment: 900 });
      expect(response.status, response.text).toBe(200);
      token = { ...token, access_token: response.json.access_token };
    }

    expect(response!.json.lease_duration).toBe(400);
    expect(response!.json.renewable).toBe(false);
    expect(response!.json.expires_at).toBe(at(3600));
    expect(response!.json.warnings[0]).toMatch(/capped to 400s by the lease's max expiry 2026-06-01T13:00:00.000Z/);
    expect(decodeJwt(response!.json.access_token).exp).toBe(T0 / 1000 + 3600);
    expect(await lease(token.lease_id)).toMatchObject({ expires_at: at(3600), max_expires_at: at(3600), renew_count: 4 });
  });

  it("renewal past max TTL fails 409", async () => {
    const token = await issueToken(broker, workload);
    for (let elapsed = 800; elapsed <= 3200; elapsed += 800) {
      broker.clock.set(at(elapsed));
      expect((await renew(token.lease_id, broker.tokens.operator, { increment: 900 })).status).toBe(200);
    }
    broker.clock.set(at(3600));

    const response = await renew(token.lease_id, broker.tokens.operator, { increment: 60 });

    expectProblem(response, 409, "invalid_state");
    expect(response.json.detail).toMatch(/cannot be renewed; obtain a new credential/);
  });

  it("expired lease renewal fails 409", async () => {
    const token = await issueToken(broker, workload, { ttl: "60" });
    broker.clock.advance(61_000);

    const response = await renew(token.lease_id, broker.tokens.operator);

    expectProblem(response, 409, "invalid_state");
    expect(response.json.detail).toMatch(/is expired/);
  });

  it("revoked lease renewal fails 409", async () => {
    const token = await issueToken(broker, workload);
    await revoke(token.lease_id, broker.tokens.operator);

    const response = await renew(token.lease_id, broker.tokens.operator);

    expectProblem(response, 409, "invalid_state");
    expect(response.json.detail).toMatch(/is revoked/);
  });

  it("superseded token stops working", async () => {
    const token = await issueToken(broker, workload);
    const renewed = await renew(token.lease_id, token.access_token, { increment: 300 });

    const reused = await renew(token.lease_id, token.access_token, { increment: 300 });

    expectProblem(reused, 401, "unauthenticated");
    expect((await introspectAsAuditor(broker, token.access_token)).active).toBe(false);
    expect((await introspectAsAuditor(broker, renewed.json.access_token)).active).toBe(true);
  });

  it("workload revokes own lease", async () => {
    const token = await issueToken(broker, workload);

    const { response, events } = await withAuditEvents(broker, () => revoke(token.lease_id, token.access_token, { reason: "job finished" }));

    expect(response.status, response.text).toBe(200);
    expect(response.json).toEqual({ revoked: 1, lease_ids: [token.lease_id], upstream: { revoked: 0, failed: 0, pending: 0 } });
    expect(await lease(token.lease_id)).toMatchObject({
      status: "revoked",
      revoked_at: TEST_NOW,
      revoked_by: `service_account:${workload.accountId}`,
      revoke_reason: "job finished",
    });
    expect(events.map((event) => event.action)).toEqual(["lease.revoke"]);
    expect((await introspectAsAuditor(broker, token.access_token)).active).toBe(false);
  });

  it("revoked token no longer authenticates", async () => {
    const token = await issueToken(broker, workload);
    await revoke(token.lease_id, token.access_token);

    const response = await renew(token.lease_id, token.access_token);

    expectProblem(response, 401, "unauthenticated");
  });

  it("workload renewing another's lease refused", async () => {
    const theirs = await issueToken(broker, neighbour);
    const mine = await issueToken(broker, workload);

    const { response, events } = await withAuditEvents(broker, () => renew(theirs.lease_id, mine.access_token, { increment: 600 }));

    expectProblem(response, 403, "forbidden");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ action: "lease.renew", outcome: "denied", target: theirs.lease_id, actor: `service_account:${workload.accountId}` });
    expect(events[0]!.details).toMatchObject({ owner: neighbour.accountId });
    expect(await lease(theirs.lease_id)).toMatchObject({ renew_count: 0, expires_at: at(900) });
  });

  it("workload revoking another's lease refused", async () => {
    const theirs = await issueToken(broker, neighbour);
    const mine = await issueToken(broker, workload);

    const { response, events } = await withAuditEvents(broker, () => revoke(theirs.lease_id, mine.access_token));

    expectProblem(response, 403, "forbidden");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ action: "lease.revoke", outcome: "denied", target: theirs.lease_id });
    expect((await lease(theirs.lease_id)).status).toBe("active");
    expect((await introspectAsAuditor(broker, theirs.access_token)).active).toBe(true);
  });

  it("token for another audience cannot renew", async () => {
    const token = await issueToken(broker, workload, { audience: "https://db.orders.example.com" });

    const response = await renew(token.lease_id, token.access_token);

    expectProblem(response, 401, "unauthenticated");
  });

  it("operator renewal attributed to operator", async () => {
    const token = await issueToken(broker, workload);

    const { events } = await withAuditEvents(broker, () => renew(token.lease_id, broker.tokens.operator, { increment: 60 }));

    expect(events[0]!.actor).toBe(`operator:${tokenIdOf(broker.tokens.operator)}`);
  });

  it("auditor cannot renew", async () => {
    const token = await issueToken(broker, workload);

    const response = await renew(token.lease_id, broker.tokens.auditor);

    expectProblem(response, 403, "forbidden");
  });

  it("unknown lease renewal returns 404", async () => {
    const response = await renew("lease_0123456789abcdef01234567", broker.tokens.operator);

    expectProblem(response, 404, "not_found");
  });

  it.each([
    { case: "increment 0", body: { increment: 0 } },
    { case: "negative increment", body: { increment: -60 } },
    { case: "fractional increment", body: { increment: 1.5 } },
    { case: "increment as text", body: { increment: "600" } },
    { case: "unknown field", body: { ttl: 600 } },
  ])("renewal rejects $case", async ({ body }) => {
    const token = await issueToken(broker, workload);

    const response = await renew(token.lease_id, broker.tokens.operator, body);

    expectProblem(response, 400, "validation_failed");
    expect((await lease(token.lease_id)).renew_count).toBe(0);
  });

  it("malformed lease id rejected", async () => {
    const response = await renew("lease_%27%20or%201%3D1", broker.tokens.operator);

    expectProblem(response, 400, "validation_failed");
  });
});
