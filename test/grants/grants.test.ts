import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditEvents, createServiceAccount, expectProblem, invalidParamNames, rowCount } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { createGrant, createSecret, obtainCredential, readLease, workloadWithToken } from "../credentials/credential-fixtures.js";

let broker: TestBroker;
let secretName: string;
let accountId: string;

beforeAll(async () => {
  broker = await startTestBroker();
  secretName = (await createSecret(broker)).name;
  accountId = (await createServiceAccount(broker, { allowed_scopes: ["secrets:read"] })).id;
});

afterAll(async () => {
  await broker?.close();
});

function inHours(hours: number): string {
  return new Date(broker.clock.now().getTime() + hours * 3_600_000).toISOString();
}

describe("grants", () => {
  it("creates a grant with approver and justification, and audits it", async () => {
    const grant = await createGrant(broker, { service_account_id: accountId, secret: secretName, scopes: ["secrets:read"], max_ttl: 600, not_after: inHours(24) });

    expect(grant).toMatchObject({ service_account_id: accountId, secret: secretName, status: "active", max_ttl: 600, approved_by: "alice@example.com", justification: "CHG-1234" });
    expect(grant.id).toMatch(/^grt_[0-9a-f]{24}$/);
    const [event] = (await auditEvents(broker, "action=grant.create")).filter((entry) => entry.target === grant.id);
    expect(event!.details).toMatchObject({ service_account_id: accountId, approved_by: "alice@example.com", justification: "CHG-1234" });
  });

  it("lists by account, secret and status, and reads one", async () => {
    const account = await createServiceAccount(broker);
    const active = await createGrant(broker, { service_account_id: account.id, secret: secretName });
    const future = await createGrant(broker, { service_account_id: account.id, audience: "https://api.example.com", not_before: inHours(2) });

    const all = await broker.request("GET", `/v1/grants?service_account_id=${account.id}`, { token: broker.tokens.auditor });
    expect(all.json.items.map((grant: { id: string }) => grant.id).sort()).toEqual([active.id, future.id].sort());
    const pending = await broker.request("GET", `/v1/grants?service_account_id=${account.id}&status=not_yet_valid`, { token: broker.tokens.auditor });
    expect(pending.json.items.map((grant: { id: string }) => grant.id)).toEqual([future.id]);
    const read = await broker.request("GET", `/v1/grants/${active.id}`, { token: broker.tokens.auditor });
    expect(read.json).toEqual(active);
  });

  it("requires not_after for a supplier account, on create and on update", async () => {
    const supplier = await createServiceAccount(broker, {
      kind: "supplier",
      supplier: { name: "Acme Ltd", contract_ref: "C-42", approved_by: "bob", approved_at: "2026-05-01T00:00:00Z" },
    });
    const refused = await broker.request("POST", "/v1/grants", { token: broker.tokens.operator, body: { service_account_id: supplier.id, secret: secretName } });
    expectProblem(refused, 400, "validation_failed");
    expect(invalidParamNames(refused)).toEqual(["not_after"]);

    const grant = await createGrant(broker, { service_account_id: supplier.id, secret: secretName, not_after: inHours(48) });
    const cleared = await broker.request("PATCH", `/v1/grants/${grant.id}`, { token: broker.tokens.operator, body: { not_after: null } });
    expectProblem(cleared, 400, "validation_failed");
  });

  it("earlier not_after shortens live leases", async () => {
    const { workload, accessToken } = await workloadWithToken(broker);
    const grant = await createGrant(broker, { service_account_id: workload.accountId, secret: secretName });
    const credential = await obtainCredential(broker, accessToken, { secret: secretName, ttl: 900 });

    const end = new Date(broker.clock.now().getTime() + 120_000).toISOString();
    const updated = await broker.request("PATCH", `/v1/grants/${grant.id}`, { token: broker.tokens.operator, body: { not_after: end } });

    expect(updated.status, updated.text).toBe(200);
    const lease = await readLease(broker, credential.lease_id);
    expect(lease.expires_at).toBe(end);
    expect(lease.max_expires_at).toBe(end);
  });

  it("revokes with DELETE as with POST .../revoke, once", async () => {
    const grant = await createGrant(broker, { service_account_id: accountId, secret: secretName });
    const deleted = await broker.request("DELETE", `/v1/grants/${grant.id}`, { token: broker.tokens.operator, body: { reason: "no longer needed" } });
    expect(deleted.status, deleted.text).toBe(200);
    expect(deleted.json).toMatchObject({ status: "revoked", revoke_reason: "no longer needed" });
    expectProblem(await broker.request("POST", `/v1/grants/${grant.id}/revoke`, { token: broker.tokens.operator }), 409, "invalid_state");
    expectProblem(await broker.request("PATCH", `/v1/grants/${grant.id}`, { token: broker.tokens.operator, body: { scopes: [] } }), 409, "invalid_state");
  });

  it("refuses grants for a decommissioned account", async () => {
    const account = await createServiceAccount(broker);
    await broker.request("POST", `/v1/service-accounts/${account.id}/decommission`, { token: broker.tokens.operator });
    const refused = await broker.request("POST", "/v1/grants", { token: broker.tokens.operator, body: { service_account_id: account.id, secret: secretName } });
    expectProblem(refused, 409, "invalid_state");
  });
});

describe("bad input on POST /v1/grants", () => {
  const cases: [string, (base: Record<string, unknown>) => Record<string, unknown>, string][] = [
    ["missing service_account_id", (base) => ({ ...base, service_account_id: undefined }), "service_account_id"],
    ["malformed service_account_id", (base) => ({ ...base, service_account_id: "sa_x" }), "service_account_id"],
    ["unknown service account", (base) => ({ ...base, service_account_id: "sa_0123456789abcdef01234567" }), "service_account_id"],
    ["neither secret nor audience", (base) => ({ ...base, secret: undefined }), "secret"],
    ["both secret and audience", (base) => ({ ...base, audience: "https://api.example.com" }), "secret"],
    ["unknown secret", (base) => ({ ...base, secret: "no/such-secret" }), "secret"],
    ["scope with a space", (base) => ({ ...base, scopes: ["a b"] }), "scopes[0]"],
    ["duplicate scopes", (base) => ({ ...base, scopes: ["a", "a"] }), "scopes"],
    ["scope outside the account's allowed scopes", (base) => ({ ...base, scopes: ["db:admin"] }), "scopes"],
    ["max_ttl too small", (base) => ({ ...base, max_ttl: 5 }), "max_ttl"],
    ["not_after in the past", (base) => ({ ...base, not_after: "2020-01-01T00:00:00Z" }), "not_after"],
    ["not_after without a zone", (base) => ({ ...base, not_after: "2027-01-01T00:00:00" }), "not_after"],
    ["not_before after not_after", (base) => ({ ...base, not_before: inHours(10), not_after: inHours(5) }), "not_before"],
    ["blank justification", (base) => ({ ...base, justification: " " }), "justification"],
    ["unknown field", (base) => ({ ...base, approver: "x" }), "approver"],
  ];

  it.each(cases)("rejects %s with 400 naming the field and writes nothing", async (_label, change, field) => {
    const before = await rowCount(broker, "grants");
    const response = await broker.request("POST", "/v1/grants", {
      token: broker.tokens.operator,
      body: change({ service_account_id: accountId, secret: secretName, expires_at: undefined }),
    });
    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toContain(field);
    expect(await rowCount(broker, "grants")).toBe(before);
  });

  it("rejects bad queries and ids, and auditor writes", async () => {
    expectProblem(await broker.request("GET", "/v1/grants?status=open", { token: broker.tokens.auditor }), 400, "validation_failed");
    expectProblem(await broker.request("GET", "/v1/grants/grt_0123456789abcdef01234567", { token: broker.tokens.auditor }), 404, "not_found");
    expectProblem(await broker.request("GET", "/v1/grants/sec_0123456789abcdef01234567", { token: broker.tokens.auditor }), 400, "validation_failed");
    expectProblem(
      await broker.request("POST", "/v1/grants", { token: broker.tokens.auditor, body: { service_account_id: accountId, secret: secretName } }),
      403,
      "forbidden",
    );
  });
});
