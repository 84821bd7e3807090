import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../broker/db/ids.js";
import { createApplication, expectProblem, tokenIdOf } from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";
import { createWorkload, introspectAsAuditor, issueToken, withAuditEvents, type Workload } from "../tokens/oauth-fixtures.js";

const T0 = Date.parse(TEST_NOW);
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

describe("lease revocation", () => {
  let broker: TestBroker;
  let operatorActor: string;

  beforeAll(async () => {
    broker = await startTestBroker();
    operatorActor = `operator:${tokenIdOf(broker.tokens.operator)}`;
  });

  afterAll(async () => {
    await broker.close();
  });

  afterEach(() => {
    broker.clock.set(TEST_NOW);
  });

  async function lease(leaseId: string): Promise<Record<string, unknown>> {
    return (await broker.request("GET", `/v1/leases/${leaseId}`)).json;
  }

  /** Inserts a live child lease, as a credential obtained under `parentId` would be. */
  async function insertChildLease(parentId: string, workload: Workload): Promise<string> {
    const id = newId("lease");
    await broker.query(`
      insert into leases (id, kind, service_account_id, application_id, parent_lease_id, scopes, grant_type, issued_at, expires_at, max_expires_at)
      values ('${id}', 'secret', '${workload.accountId}', '${workload.applicationId}', '${parentId}', '{}', 'credentials',
              '${TEST_NOW}', '${at(600)}', '${at(3600)}')`);
    return id;
  }

  function bulkRevoke(body: unknown, token = broker.tokens.operator) {
    return broker.request("POST", "/v1/leases/revoke", { token, body });
  }

  it("revocation cascades to child leases", async () => {
    const workload = await createWorkload(broker);
    const parent = await issueToken(broker, workload);
    const child = await insertChildLease(parent.lease_id, workload);
    const grandchild = await insertChildLease(child, workload);

    const { response, events } = await withAuditEvents(broker, () =>
      broker.request("POST", `/v1/leases/${parent.lease_id}/revoke`, { token: broker.tokens.operator, body: { reason: "key compromised" } }),
    );

    expect(response.status, response.text).toBe(200);
    expect(response.json.revoked).toBe(3);
    expect([...response.json.lease_ids].sort()).toEqual([parent.lease_id, child, grandchild].sort());
    for (const id of [child, grandchild]) {
      expect(await lease(id)).toMatchObject({ status: "revoked", revoked_at: TEST_NOW, revoked_by: operatorActor, revoke_reason: "key compromised" });
    }
    expect(events.map((event) => event.action)).toEqual(["lease.revoke", "lease.revoke", "lease.revoke"]);
    expect(events.find((event) => event.target === grandchild)!.details["parent_lease_id"]).toBe(child);
  });

  it("revoking child leaves parent live", async () => {
    const workload = await createWorkload(broker);
    const parent = await issueToken(broker, workload);
    const child = await insertChildLease(parent.lease_id, workload);

    const response = await broker.request("POST", `/v1/leases/${child}/revoke`, { token: broker.tokens.operator, body: {} });

    expect(response.json.revoked).toBe(1);
    expect((await lease(parent.lease_id)).status).toBe("active");
  });

  it("already revoked lease revokes nothing", async () => {
    const workload = await createWorkload(broker);
    const token = await issueToken(broker, workload);
    await broker.request("POST", `/v1/leases/${token.lease_id}/revoke`, { token: broker.tokens.operator, body: {} });

    const { response, events } = await withAuditEvents(broker, () =>
      broker.request("POST", `/v1/leases/${token.lease_id}/revoke`, { token: broker.tokens.operator, body: { reason: "again" } }),
    );

    expect(response.status).toBe(200);
    expect(response.json).toEqual({ revoked: 0, lease_ids: [], upstream: { revoked: 0, failed: 0, pending: 0 } });
    expect(events).toEqual([]);
    expect((await lease(token.lease_id)).revoke_reason).toBeNull();
  });

  it("revoking unknown lease returns 404", async () => {
    const response = await broker.request("POST", "/v1/leases/lease_0123456789abcdef01234567/revoke", { token: broker.tokens.operator, body: {} });

    expectProblem(response, 404, "not_found");
  });

  it("bulk revoke by service account", async () => {
    const target = await createWorkload(broker);
    const bystander = await createWorkload(broker);
    const leases = [await issueToken(broker, target), await issueToken(broker, target)];
    const child = await insertChildLease(leases[0]!.lease_id, target);
    const untouched = await issueToken(broker, bystander);

    const response = await bulkRevoke({ service_account_id: target.accountId, reason: "offboarding" });

    expect(response.status, response.text).toBe(200);
    expect(response.json.revoked).toBe(3);
    expect([...response.json.lease_ids].sort()).toEqual([...leases.map((item) => item.lease_id), child].sort());
    expect((await lease(untouched.lease_id)).status).toBe("active");
    for (const item of leases) {
      expect((await introspectAsAuditor(broker, item.access_token)).active).toBe(false);
    }
  });

  it("bulk revoke by application", async () => {
    const application = (await createApplication(broker)).id;
    const first = await createWorkload(broker, { application_id: application });
    const second = await createWorkload(broker, { application_id: application });
    const bystander = await createWorkload(broker);
    await issueToken(broker, first);
    await issueToken(broker, second);
    await issueToken(broker, second);
    const untouched = await issueToken(broker, bystander);

    const response = await bulkRevoke({ application_id: application });

    expect(response.status, response.text).toBe(200);
    expect(response.json.revoked).toBe(3);
    expect((await lease(untouched.lease_id)).status).toBe("active");
  });

  it("bulk revoke by prefix", async () => {
    const workload = await createWorkload(broker);
    const target = await issueToken(broker, workload);
    const bystander = await issueToken(broker, workload);

    const response = await bulkRevoke({ prefix: target.lease_id });

    expect(response.status, response.text).toBe(200);
    expect(response.json).toEqual({ revoked: 1, lease_ids: [target.lease_id], upstream: { revoked: 0, failed: 0, pending: 0 } });
    expect((await lease(bystander.lease_id)).status).toBe("active");
  });

  it("bulk revoke skips ended leases", async () => {
    const workload = await createWorkload(broker);
    await issueToken(broker, workload, { ttl: "60" });
    const live = await issueToken(broker, workload);
    broker.clock.advance(61_000);

    const response = await bulkRevoke({ service_account_id: workload.accountId });

    expect(response.json).toEqual({ revoked: 1, lease_ids: [live.lease_id], upstream: { revoked: 0, failed: 0, pending: 0 } });
  });

  it.each([
    { case: "no scope", body: {} },
    { case: "two scopes", body: { service_account_id: "sa_0123456789abcdef01234567", prefix: "lease_0" } },
    { case: "prefix with a LIKE wildcard", body: { prefix: "lease_%" } },
    { case: "prefix with an underscore wildcard", body: { prefix: "lease__" } },
    { case: "prefix without lease_", body: { prefix: "0a" } },
    { case: "empty reason", body: { service_account_id: "sa_0123456789abcdef01234567", reason: "" } },
    { case: "unknown field", body: { service_account_id: "sa_0123456789abcdef01234567", force: true } },
  ])("bulk revoke rejects $case", async ({ body }) => {
    const workload = await createWorkload(broker);
    const token = await issueToken(broker, workload);

    const response = await bulkRevoke(body);

    expectProblem(response, 400, "validation_failed");
    expect((await lease(token.lease_id)).status).toBe("active");
  });

  it("auditor cannot bulk revoke", async () => {
    const workload = await createWorkload(broker);
    await issueToken(broker, workload);

    const response = await bulkRevoke({ service_account_id: workload.accountId }, broker.tokens.auditor);

    expectProblem(response, 403, "forbidden");
  });

  it("workload cannot bulk revoke", async () => {
    const workload = await createWorkload(broker);
    const token = await issueToken(broker, workload);

    const response = await bulkRevoke({ service_account_id: workload.accountId }, token.access_token);

    expectProblem(response, 401, "unauthenticated");
    expect((await lease(token.lease_id)).status).toBe("active");
  });

  it.each(["suspend", "decommission"])("%s revokes live leases", async (change) => {
    const workload = await createWorkload(broker);
    const tokens = [await issueToken(broker, workload), await issueToken(broker, workload)];
    const child = await insertChildLease(tokens[0]!.lease_id, workload);

    const { response, events } = await withAuditEvents(broker, () =>
      broker.request("POST", `/v1/service-accounts/${workload.accountId}/${change}`, { token: broker.tokens.operator, body: { reason: "incident 42" } }),
    );

    expect(response.status, response.text).toBe(200);
    for (const token of tokens) {
      expect(await lease(token.lease_id)).toMatchObject({ status: "revoked", revoked_by: operatorActor, revoke_reason: `service account ${change}: incident 42` });
      expect((await introspectAsAuditor(broker, token.access_token)).active).toBe(false);
    }
    expect((await lease(child)).status).toBe("revoked");
    expect(events.filter((event) => event.action === "lease.revoke")).toHaveLength(3);
  });

  it("earlier account expiry caps leases", async () => {
    const workload = await createWorkload(broker);
    const token = await issueToken(broker, workload);
    const child = await insertChildLease(token.lease_id, workload);

    const response = await broker.request("PATCH", `/v1/service-accounts/${workload.accountId}`, { token: broker.tokens.operator, body: { expires_at: at(300) } });

    expect(response.status, response.text).toBe(200);
    expect(await lease(token.lease_id)).toMatchObject({ status: "active", expires_at: at(300), max_expires_at: at(300) });
    expect(await lease(child)).toMatchObject({ expires_at: at(300), max_expires_at: at(300) });
    expect((await introspectAsAuditor(broker, token.access_token)).active).toBe(true);
  });

  it("capped lease ends at account expiry", async () => {
    const workload = await createWorkload(broker);
    const token = await issueToken(broker, workload);
    await broker.request("PATCH", `/v1/service-accounts/${workload.accountId}`, { token: broker.tokens.operator, body: { expires_at: at(300) } });
    broker.clock.set(at(301));

    const renewal = await broker.request("POST", `/v1/leases/${token.lease_id}/renew`, { token: broker.tokens.operator, body: {} });

    expect((await lease(token.lease_id)).status).toBe("expired");
    expect((await introspectAsAuditor(broker, token.access_token)).active).toBe(false);
    expectProblem(renewal, 409, "invalid_state");
  });

  it("later account expiry leaves leases alone", async () => {
    const workload = await createWorkload(broker);
    const token = await issueToken(broker, workload);

    await broker.request("PATCH", `/v1/service-accounts/${workload.accountId}`, { token: broker.tokens.operator, body: { expires_at: "2028-01-01T00:00:00.000Z" } });

    expect(await lease(token.lease_id)).toMatchObject({ expires_at: at(900), max_expires_at: at(3600) });
  });

  it("renewal stops at capped max expiry", async () => {
    const workload = await createWorkload(broker);
    const token = await issueToken(broker, workload);
    await broker.request("PATCH", `/v1/service-accounts/${workload.accountId}`, { token: broker.tokens.operator, body: { expires_at: at(300) } });
    broker.clock.set(at(100));

    const renewal = await broker.request("POST", `/v1/leases/${token.lease_id}/renew`, { token: broker.tokens.operator, body: { increment: 900 } });

    expect(renewal.status, renewal.text).toBe(200);
    expect(renewal.json.lease_duration).toBe(200);
    expect(renewal.json.expires_at).toBe(at(300));
    expect(renewal.json.renewable).toBe(false);
  });
});

describe("lease revocation by bare prefix", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterAll(async () => {
    await broker.close();
  });

  it("prefix lease_ revokes every live lease", async () => {
    const workload = await createWorkload(broker);
    const other = await createWorkload(broker);
    await issueToken(broker, workload);
    await issueToken(broker, workload);
    await issueToken(broker, other);

    const response = await broker.request("POST", "/v1/leases/revoke", { token: broker.tokens.operator, body: { prefix: "lease_" } });

    expect(response.status, response.text).toBe(200);
    expect(response.json.revoked).toBe(3);
    const live = await broker.request("GET", "/v1/leases?status=active");
    expect(live.json.items).toEqual([]);
  });
});
