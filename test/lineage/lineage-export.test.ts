import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import {
  createApplication,
  createWorkload,
  csvObjects,
  expectStatus,
  exportLineage,
  issueToken,
  parseNdjson,
  renewLease,
  revokeLease,
  type Workload,
} from "./lineage-fixtures.js";

const MINUTE_MS = 60_000;
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const FEDERATED_ISSUER = "https://token.actions.example.com";
const FEDERATED_SUBJECT = "repo:example/orders:ref:refs/heads/main";

/**
 * Timeline, on the test clock (every token lives 15 minutes, the account default):
 *   12:00 A issued to ledger, revoked 12:05
 *   12:30 B issued to ledger, expires 12:45
 *   13:00 C issued to reports, revoked 13:10
 *   14:00 D issued to billing, renewed 14:05
 *   14:05 E issued to reports by token exchange; the export runs at 14:05
 */
describe("GET /v1/lineage", () => {
  let broker: TestBroker;
  let ledger: Workload;
  let reports: Workload;
  let billing: Workload;
  let ordersApplicationId: string;
  const leaseIds: Record<"A" | "B" | "C" | "D" | "E", string> = { A: "", B: "", C: "", D: "", E: "" };
  const accessTokens: string[] = [];

  beforeAll(async () => {
    broker = await startTestBroker();
    ordersApplicationId = await createApplication(broker, { business_owner: "carol@example.com" });
    ledger = await createWorkload(broker, { applicationId: ordersApplicationId, account: { technical_owner: "dana@example.com" } });
    reports = await createWorkload(broker, { applicationId: ordersApplicationId });
    billing = await createWorkload(broker);

    const a = await issueToken(broker, ledger, { scope: "orders.read", audience: "https://api.example.com" });
    leaseIds.A = a.lease_id;
    accessTokens.push(a.access_token);
    broker.clock.advance(5 * MINUTE_MS);
    await revokeLease(broker, a.lease_id, "key rotated");

    broker.clock.advance(25 * MINUTE_MS);
    const b = await issueToken(broker, ledger);
    leaseIds.B = b.lease_id;
    accessTokens.push(b.access_token);

    broker.clock.advance(30 * MINUTE_MS);
    const c = await issueToken(broker, reports);
    leaseIds.C = c.lease_id;
    accessTokens.push(c.access_token);
    broker.clock.advance(10 * MINUTE_MS);
    await revokeLease(broker, c.lease_id);

    broker.clock.advance(50 * MINUTE_MS);
    const d = await issueToken(broker, billing);
    leaseIds.D = d.lease_id;
    accessTokens.push(d.access_token);
    broker.clock.advance(5 * MINUTE_MS);
    const renewed = await renewLease(broker, d.lease_id, 600);
    accessTokens.push(renewed.access_token);

    const e = await exchangeFederatedToken(broker, reports);
    leaseIds.E = e.lease_id;
    accessTokens.push(e.access_token);
  });

  afterAll(async () => {
    await broker?.close();
  });

  it("streams every lease as NDJSON by default", async () => {
    const response = await exportLineage(broker);

    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const rows = parseNdjson(response.text);
    expect(rows.map((row) => row.lease_id)).toEqual([leaseIds.A, leaseIds.B, leaseIds.C, leaseIds.D, leaseIds.E]);
  });

  it("describes a revoked client_credentials lease", async () => {
    const rows = parseNdjson((await exportLineage(broker)).text);
    const application = expectStatus(await broker.request("GET", `/v1/applications/${ordersApplicationId}`), 200);
    const account = expectStatus(await broker.request("GET", `/v1/service-accounts/${ledger.accountId}`), 200);

    expect(rows[0]).toEqual({
      lease_id: leaseIds.A,
      kind: "access_token",
      service_account_id: ledger.accountId,
      service_account_name: account.name,
      technical_owner: "dana@example.com",
      application_id: ordersApplicationId,
      application_name: application.name,
      business_owner: "carol@example.com",
      grant_type: "client_credentials",
      grant_id: null,
      secret_id: null,
      secret_name: null,
      secret_version: null,
      version_fingerprint: null,
      upstream_lease_id: null,
      upstream_revoke_state: null,
      audience: "https://api.example.com",
      scopes: ["orders.read"],
      client_kid: ledger.kid,
      subject_issuer: null,
      subject: null,
      issued_at: "2026-06-01T12:00:00.000Z",
      last_renewed_at: null,
      renew_count: 0,
      expires_at: "2026-06-01T12:15:00.000Z",
      max_expires_at: "2026-06-01T13:00:00.000Z",
      ended_at: "2026-06-01T12:05:00.000Z",
      end_reason: "revoked",
      revoked_at: "2026-06-01T12:05:00.000Z",
      revoked_by: expect.stringMatching(/^operator:tok_[0-9a-f]{24}$/),
      revoke_reason: "key rotated",
      source_address: null,
      parent_lease_id: null,
    });
  });

  it("reports expiry, renewal and federated subjects", async () => {
    const rows = parseNdjson((await exportLineage(broker)).text);
    const byId = new Map(rows.map((row) => [row.lease_id, row]));

    const expired = byId.get(leaseIds.B);
    expect(expired.end_reason).toBe("expired");
    expect(expired.ended_at).toBe("2026-06-01T12:45:00.000Z");
    expect(expired.revoked_at).toBeNull();

    const renewed = byId.get(leaseIds.D);
    expect(renewed.end_reason).toBeNull();
    expect(renewed.ended_at).toBeNull();
    expect(renewed.renew_count).toBe(1);
    expect(renewed.last_renewed_at).toBe("2026-06-01T14:05:00.000Z");
    expect(renewed.expires_at).toBe("2026-06-01T14:15:00.000Z");
    expect(renewed.business_owner).toBeNull();

    const exchanged = byId.get(leaseIds.E);
    expect(exchanged.grant_type).toBe(TOKEN_EXCHANGE);
    expect(exchanged.client_kid).toBeNull();
    expect(exchanged.subject_issuer).toBe(FEDERATED_ISSUER);
    expect(exchanged.subject).toBe(FEDERATED_SUBJECT);
    expect(exchanged.scopes).toEqual(["orders.read", "orders.write"]);
  });

  it("returns the same rows as JSON and CSV", async () => {
    const expected = parseNdjson((await exportLineage(broker)).text);

    const json = await exportLineage(broker, { format: "json" });
    expect(json.status).toBe(200);
    expect(json.headers.get("content-type")).toMatch(/^application\/json/);
    expect(JSON.parse(json.text)).toEqual(expected);

    const csv = await exportLineage(broker, { format: "csv" });
    expect(csv.status).toBe(200);
    expect(csv.headers.get("content-type")).toMatch(/^text\/csv; charset=utf-8; header=present/);
    const { header, rows } = csvObjects(csv.text);
    expect(header).toEqual(Object.keys(expected[0]));
    expect(rows).toEqual(expected.map(asCsvCells));
  });

  it("filters by service account and by application", async () => {
    const byAccount = parseNdjson((await exportLineage(broker, { service_account_id: ledger.accountId })).text);
    expect(byAccount.map((row) => row.lease_id)).toEqual([leaseIds.A, leaseIds.B]);

    const byApplication = parseNdjson((await exportLineage(broker, { application_id: ordersApplicationId })).text);
    expect(byApplication.map((row) => row.lease_id)).toEqual([leaseIds.A, leaseIds.B, leaseIds.C, leaseIds.E]);

    const both = parseNdjson((await exportLineage(broker, { application_id: ordersApplicationId, service_account_id: reports.accountId })).text);
    expect(both.map((row) => row.lease_id)).toEqual([leaseIds.C, leaseIds.E]);

    const otherApplication = parseNdjson((await exportLineage(broker, { application_id: billing.applicationId, service_account_id: ledger.accountId })).text);
    expect(otherApplication).toEqual([]);
  });

  it.each([
    { name: "revoked before the window is excluded", from: "12:10", to: "12:35", expected: ["B"] },
    { name: "revoked exactly at from is excluded", from: "12:05", to: "12:35", expected: ["B"] },
    { name: "revoked just after from is included", from: "12:04:59", to: "12:35", expected: ["A", "B"] },
    { name: "issued exactly at to is excluded", from: "12:10", to: "12:30", expected: [] },
    { name: "issued after the window is excluded", from: "11:00", to: "12:01", expected: ["A"] },
    { name: "expired before the window is excluded", from: "12:45", to: "13:05", expected: ["C"] },
    { name: "from alone keeps what ends later", from: "13:05", to: undefined, expected: ["C", "D", "E"] },
    { name: "to alone keeps what was issued earlier", from: undefined, to: "12:31", expected: ["A", "B"] },
    { name: "a window in the future keeps live leases only", from: "14:10", to: "15:00", expected: ["D", "E"] },
    { name: "a window after every expiry is empty", from: "14:30", to: "16:00", expected: [] },
  ] as const)("live window: $name", async ({ from, to, expected }) => {
    const query: Record<string, string> = {};
    if (from) query["from"] = at(from);
    if (to) query["to"] = at(to);

    const rows = parseNdjson(expectStatusText(await exportLineage(broker, query), 200));
    expect(rows.map((row) => row.lease_id)).toEqual(expected.map((name) => leaseIds[name]));
  });

  it("accepts time zone offsets in from and to", async () => {
    const rows = parseNdjson((await exportLineage(broker, { from: "2026-06-01T14:04:00+02:00", to: "2026-06-01T14:31:00+02:00" })).text);
    expect(rows.map((row) => row.lease_id)).toEqual([leaseIds.A, leaseIds.B]);
  });

  it("never contains an access token", async () => {
    expect(accessTokens).toHaveLength(6);
    for (const format of ["ndjson", "json", "csv"]) {
      const text = (await exportLineage(broker, { format })).text;
      for (const token of accessTokens) {
        expect(text).not.toContain(token);
        expect(text).not.toContain(token.split(".")[2]);
      }
      // Every JWT starts with the base64url of '{"', which no exported field holds.
      expect(text).not.toContain("eyJ");
    }
  });

  it("lets an auditor export but not revoke", async () => {
    expect((await exportLineage(broker, {}, broker.tokens.auditor)).status).toBe(200);
    expect((await exportLineage(broker, {}, broker.tokens.operator)).status).toBe(200);

    const single = await broker.request("POST", `/v1/leases/${leaseIds.D}/revoke`, { token: broker.tokens.auditor, body: {} });
    expect(single.status).toBe(403);
    expect(single.json.code).toBe("forbidden");
    const bulk = await broker.request("POST", "/v1/leases/revoke", { token: broker.tokens.auditor, body: { service_account_id: billing.accountId } });
    expect(bulk.status).toBe(403);
    expect(bulk.json.code).toBe("forbidden");

    const rows = parseNdjson((await exportLineage(broker, { service_account_id: billing.accountId })).text);
    expect(rows[0].end_reason).toBeNull();
  });

  it("rejects a request without an operator token", async () => {
    const response = await exportLineage(broker, {}, "");
    expect(response.status).toBe(401);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(response.json.code).toBe("unauthenticated");
  });

  it("shows leases revoked in bulk with their reason", async () => {
    const revoked = expectStatus(
      await broker.request("POST", "/v1/leases/revoke", { body: { service_account_id: billing.accountId, reason: "incident 7" } }),
      200,
    );
    expect(revoked.lease_ids).toEqual([leaseIds.D]);

    const [row] = parseNdjson((await exportLineage(broker, { service_account_id: billing.accountId })).text);
    expect(row.end_reason).toBe("revoked");
    expect(row.ended_at).toBe("2026-06-01T14:05:00.000Z");
    expect(row.revoke_reason).toBe("incident 7");
  });

  it("is listed in the OpenAPI document", async () => {
    const document = (await broker.request("GET", "/openapi.json")).json;
    const operation = document.paths["/v1/lineage"].get;
    expect(operation.parameters.map((parameter: { name: string }) => parameter.name).sort()).toEqual(
      ["application_id", "format", "from", "secret_id", "service_account_id", "to"],
    );
    expect(Object.keys(operation.responses["200"].content).sort()).toEqual(["application/json", "application/x-ndjson", "text/csv"]);
  });
});

/** Builds an RFC 3339 UTC time on the test day from "HH:MM" or "HH:MM:SS". */
function at(time: string): string {
  return `2026-06-01T${time.length === 5 ? `${time}:00` : time}Z`;
}

function expectStatusText(response: { status: number; text: string }, status: number): string {
  expect(response.status, response.text).toBe(status);
  return response.text;
}

/** The CSV cells the export should write for one record: empty for null, scopes joined with spaces. */
function asCsvCells(record: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(record).map(([key, value]) => [key, value === null ? "" : Array.isArray(value) ? value.join(" ") : String(value)]),
  );
}

/** Trusts a federated issuer with an inline key, binds a subject to `workload`, and exchanges a token from it. */
async function exchangeFederatedToken(broker: TestBroker, workload: Workload): Promise<{ access_token: string; lease_id: string }> {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "actions-1", alg: "ES256", use: "sig" };
  const issuer = broker.deps.config.issuer;
  expectStatus(await broker.request("POST", "/v1/trusted-issuers", { body: { issuer: FEDERATED_ISSUER, jwks: { keys: [jwk] }, audiences: [issuer] } }), 201);
  expectStatus(
    await broker.request("POST", `/v1/service-accounts/${workload.accountId}/federated-subjects`, { body: { issuer: FEDERATED_ISSUER, subject: FEDERATED_SUBJECT } }),
    201,
  );

  const now = Math.floor(broker.clock.now().getTime() / 1000);
  const subjectToken = await new SignJWT({})
    .setProtectedHeader({ alg: "ES256", kid: "actions-1", typ: "JWT" })
    .setIssuer(FEDERATED_ISSUER)
    .setSubject(FEDERATED_SUBJECT)
    .setAudience(issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .sign(privateKey);
  const body = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE,
    subject_token: subjectToken,
    subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
  }).toString();
  const response = await broker.request("POST", "/v1/token", { token: null, rawBody: body, headers: { "content-type": "application/x-www-form-urlencoded" } });
  return expectStatus(response, 200);
}
