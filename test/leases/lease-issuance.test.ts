import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createApplication, expectProblem, rowCount } from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";
import {
  createWorkload,
  introspectAsAuditor,
  issueToken,
  jtiOf,
  requestToken,
  withAuditEvents,
  type Workload,
} from "../tokens/oauth-fixtures.js";

const HOUR_MS = 3600 * 1000;

describe("lease issuance", () => {
  let broker: TestBroker;
  let workload: Workload;

  beforeAll(async () => {
    broker = await startTestBroker();
    workload = await createWorkload(broker, { allowed_audiences: ["https://db.orders.example.com"], allowed_scopes: ["orders.read"] });
  });

  afterAll(async () => {
    await broker.close();
  });

  afterEach(() => {
    broker.clock.set(TEST_NOW);
  });

  /** Makes every audit event insert fail, and so every audited write, while `work` runs. */
  async function withAuditInsertsFailing<T>(work: () => Promise<T>): Promise<T> {
    // NOT VALID: the constraint checks new rows only, so the existing events stay.
    await broker.query("alter table audit_events add constraint test_reject_inserts check (false) not valid");
    try {
      return await work();
    } finally {
      await broker.query("alter table audit_events drop constraint test_reject_inserts");
    }
  }

  it("token issue writes lease row", async () => {
    const token = await issueToken(broker, workload, { audience: "https://db.orders.example.com", scope: "orders.read", ttl: "300" });

    const lease = await broker.request("GET", `/v1/leases/${token.lease_id}`);
    expect(lease.status, lease.text).toBe(200);
    expect(lease.json).toMatchObject({
      id: token.lease_id,
      kind: "access_token",
      status: "active",
      service_account_id: workload.accountId,
      application_id: workload.applicationId,
      parent_lease_id: null,
      audience: "https://db.orders.example.com",
      scopes: ["orders.read"],
      grant_type: "client_credentials",
      client_kid: workload.kid,
      subject_issuer: null,
      subject: null,
      issued_at: TEST_NOW,
      expires_at: new Date(Date.parse(TEST_NOW) + 300_000).toISOString(),
      max_expires_at: new Date(Date.parse(TEST_NOW) + HOUR_MS).toISOString(),
      last_renewed_at: null,
      renew_count: 0,
      revoked_at: null,
    });
    expect(token.lease_id).toMatch(/^lease_[0-9a-f]{24}$/);
  });

  it("token issue writes audit event", async () => {
    const { response, events } = await withAuditEvents(broker, () => requestToken(broker, workload, { scope: "orders.read" }));

    const token = response.json.access_token as string;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      action: "token.issue",
      outcome: "success",
      target: response.json.lease_id,
      actor: `service_account:${workload.accountId}`,
      occurred_at: TEST_NOW,
    });
    expect(events[0]!.details).toMatchObject({
      service_account_id: workload.accountId,
      grant_type: "client_credentials",
      audience: broker.deps.config.issuer,
      scopes: ["orders.read"],
      ttl: 900,
      jti: jtiOf(token),
      client_kid: workload.kid,
    });
    expect(JSON.stringify(events)).not.toContain(token);
  });

  it("audit failure issues no token", async () => {
    const leasesBefore = await rowCount(broker, "leases");

    const response = await withAuditInsertsFailing(() => requestToken(broker, workload));

    expect(response.status).toBe(500);
    expect(response.json.error).toBe("server_error");
    expect(response.json.access_token).toBeUndefined();
    expect(response.text).not.toMatch(/eyJ/);
    expect(await rowCount(broker, "leases")).toBe(leasesBefore);
    expect(broker.logs.some((line) => line.includes("failed to record a refused token request"))).toBe(true);
  });

  it("audit chain verifies after failed issue", async () => {
    await withAuditInsertsFailing(() => requestToken(broker, workload));

    const response = await broker.request("GET", "/v1/audit/verify");

    expect(response.json.valid).toBe(true);
  });

  it("audit failure leaves renewal undone", async () => {
    const token = await issueToken(broker, workload);

    const response = await withAuditInsertsFailing(() =>
      broker.request("POST", `/v1/leases/${token.lease_id}/renew`, { token: token.access_token, body: { increment: 600 } }),
    );

    expect(response.status).toBe(500);
    expect(response.text).not.toMatch(/eyJ/);
    const lease = await broker.request("GET", `/v1/leases/${token.lease_id}`);
    expect(lease.json.renew_count).toBe(0);
    expect(lease.json.expires_at).toBe(new Date(Date.parse(TEST_NOW) + 900_000).toISOString());
    expect((await introspectAsAuditor(broker, token.access_token)).active).toBe(true);
  });

  it("audit failure leaves revocation undone", async () => {
    const token = await issueToken(broker, workload);

    const response = await withAuditInsertsFailing(() => broker.request("POST", `/v1/leases/${token.lease_id}/revoke`, { body: {} }));

    expect(response.status).toBe(500);
    const lease = await broker.request("GET", `/v1/leases/${token.lease_id}`);
    expect(lease.json.status).toBe("active");
  });
});

describe("lease listing", () => {
  let broker: TestBroker;
  let applicationId: string;
  let first: Workload;
  let second: Workload;
  let elsewhere: Workload;
  let firstLeases: string[];
  let revokedLease: string;
  let expiredLease: string;
  let laterLease: string;

  beforeAll(async () => {
    broker = await startTestBroker();
    applicationId = (await createApplication(broker)).id;
    first = await createWorkload(broker, { application_id: applicationId });
    second = await createWorkload(broker, { application_id: applicationId });
    elsewhere = await createWorkload(broker);

    firstLeases = [(await issueToken(broker, first)).lease_id, (await issueToken(broker, first)).lease_id];
    revokedLease = (await issueToken(broker, second)).lease_id;
    await broker.request("POST", `/v1/leases/${revokedLease}/revoke`, { body: { reason: "test" } });
    expiredLease = (await issueToken(broker, second, { ttl: "60" })).lease_id;
    await issueToken(broker, elsewhere);

    broker.clock.advance(HOUR_MS / 2);
    laterLease = (await issueToken(broker, second)).lease_id;
  });

  afterAll(async () => {
    await broker.close();
  });

  async function list(query: string, token = broker.tokens.auditor): Promise<string[]> {
    const response = await broker.request("GET", `/v1/leases?${query}`, { token });
    expect(response.status, response.text).toBe(200);
    return (response.json.items as { id: string }[]).map((lease) => lease.id);
  }

  it("filters by service account", async () => {
    expect(await list(`service_account_id=${first.accountId}`)).toEqual([...firstLeases].sort());
  });

  it("filters by application", async () => {
    const ids = await list(`application_id=${applicationId}`);

    expect(ids).toHaveLength(5);
    expect(ids).toEqual(expect.arrayContaining([...firstLeases, revokedLease, expiredLease, laterLease]));
  });

  it("filters by status", async () => {
    const query = `service_account_id=${second.accountId}`;

    expect(await list(`${query}&status=revoked`)).toEqual([revokedLease]);
    expect(await list(`${query}&status=expired`)).toEqual([expiredLease]);
    expect(await list(`${query}&status=active`)).toEqual([laterLease]);
  });

  it("filters by issue time", async () => {
    const half = new Date(Date.parse(TEST_NOW) + HOUR_MS / 4).toISOString();

    expect(await list(`application_id=${applicationId}&issued_after=${half}`)).toEqual([laterLease]);
    expect(await list(`application_id=${applicationId}&issued_before=${half}`)).not.toContain(laterLease);
    expect(await list(`application_id=${applicationId}&issued_before=${half}`)).toHaveLength(4);
  });

  it("pages with cursor", async () => {
    const all = await list(`application_id=${applicationId}`);

    const page = await broker.request("GET", `/v1/leases?application_id=${applicationId}&limit=2`, { token: broker.tokens.auditor });
    const next = await broker.request("GET", `/v1/leases?application_id=${applicationId}&limit=2&cursor=${page.json.next_cursor}`, {
      token: broker.tokens.auditor,
    });

    expect(page.json.items.map((lease: { id: string }) => lease.id)).toEqual(all.slice(0, 2));
    expect(next.json.items.map((lease: { id: string }) => lease.id)).toEqual(all.slice(2, 4));
  });

  it.each([
    { case: "unknown status", query: "status=live", field: "status" },
    { case: "malformed account id", query: "service_account_id=orders", field: "service_account_id" },
    { case: "malformed time", query: "issued_after=yesterday", field: "issued_after" },
    { case: "unknown filter", query: "owner=alice", field: "owner" },
  ])("rejects $case", async ({ query }) => {
    const response = await broker.request("GET", `/v1/leases?${query}`);

    expectProblem(response, 400, "validation_failed");
  });

  it("workload token cannot list leases", async () => {
    const token = await issueToken(broker, elsewhere);

    const response = await broker.request("GET", "/v1/leases", { token: token.access_token });

    expectProblem(response, 401, "unauthenticated");
  });

  it("unknown lease returns 404", async () => {
    const response = await broker.request("GET", "/v1/leases/lease_0123456789abcdef01234567");

    expectProblem(response, 404, "not_found");
  });
});
