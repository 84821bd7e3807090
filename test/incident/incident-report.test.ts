import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRotationTick } from "../../broker/rotation/rotation-scheduler.js";
import { expectProblem } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { issueToken } from "../tokens/oauth-fixtures.js";
import { createGrant, createSecret, obtainCredential, workloadWithToken } from "../credentials/credential-fixtures.js";

const LEAKED = "leaked-api-key-7f3a9c2e";
const MINUTE_MS = 60_000;

describe("incident lookup", () => {
  let broker: TestBroker;
  let t0: Date;
  let fingerprint: string;
  let leakedSecret: { id: string; name: string };
  const leases: Record<string, string> = {};
  let accountA: string;
  let accountB: string;

  async function report(query: string): Promise<any> {
    const response = await broker.request("GET", `/v1/incident-report?${query}`, { token: broker.tokens.auditor });
    expect(response.status, response.text).toBe(200);
    return response.json;
  }

  beforeAll(async () => {
    broker = await startTestBroker();
    t0 = broker.clock.now();
    const a = await workloadWithToken(broker);
    const b = await workloadWithToken(broker);
    accountA = a.workload.accountId;
    accountB = b.workload.accountId;
    leakedSecret = await createSecret(broker, { value: LEAKED, generate: undefined });
    const policy = await broker.request("PATCH", `/v1/secrets/${leakedSecret.id}`, { token: broker.tokens.operator, body: { generate: { length: 32, field: "value" } } });
    expect(policy.status, policy.text).toBe(200);
    const other = await createSecret(broker, { value: "an-unrelated-value-1", generate: undefined });
    for (const account of [accountA, accountB]) {
      await createGrant(broker, { service_account_id: account, secret: leakedSecret.name, scopes: ["secrets:read"] });
      await createGrant(broker, { service_account_id: account, secret: other.name, scopes: ["secrets:read"] });
    }

    // A has the leaked value from t0 for 10 minutes, and B from t0+20m; B also has the other secret.
    leases["a"] = (await obtainCredential(broker, a.accessToken, { secret: leakedSecret.name, ttl: 600 })).lease_id;
    leases["aToken"] = a.tokenLeaseId;
    broker.clock.advance(20 * MINUTE_MS);
    const bToken = await issueToken(broker, b.workload);
    leases["b"] = (await obtainCredential(broker, bToken.access_token, { secret: leakedSecret.name, ttl: 600 })).lease_id;
    leases["bOther"] = (await obtainCredential(broker, bToken.access_token, { secret: other.name, ttl: 600 })).lease_id;

    const lookup = await broker.request("POST", "/v1/fingerprints", { token: broker.tokens.operator, body: { value: LEAKED } });
    expect(lookup.status, lookup.text).toBe(200);
    fingerprint = lookup.json.fingerprint;
    expect(lookup.json.matches).toEqual([{ secret_id: leakedSecret.id, name: leakedSecret.name, version: "1", stage: "current" }]);
  });

  afterAll(async () => {
    await broker?.close();
  });

  it("lists every lease that carried the leaked value", async () => {
    const body = await report(`fingerprint=${fingerprint}`);

    expect(body.credentials.map((lease: any) => lease.lease_id)).toEqual([leases["a"], leases["b"]]);
    expect(body.matched_versions).toEqual([expect.objectContaining({ secret_id: leakedSecret.id, version: "1" })]);
    expect(body.affected.service_accounts.map((account: any) => account.id).sort()).toEqual([accountA, accountB].sort());
    expect(body.affected.secrets).toEqual([{ id: leakedSecret.id, name: leakedSecret.name, versions: ["1"] }]);
    expect(body.truncated).toBe(false);
  });

  it("lists only the leases live in the window", async () => {
    const from = new Date(t0.getTime() + 15 * MINUTE_MS).toISOString();

    const body = await report(`fingerprint=${fingerprint}&from=${from}`);

    expect(body.credentials.map((lease: any) => lease.lease_id)).toEqual([leases["b"]]);
    expect(body.nis2_article_23.credentials_live_now).toBe(1);
    expect(body.nis2_article_23.exposure_window.first_issued_at).toBe(new Date(t0.getTime() + 20 * MINUTE_MS).toISOString());
  });

  it("reports a service account's credentials in a window", async () => {
    const from = new Date(t0.getTime() - MINUTE_MS).toISOString();
    const to = new Date(t0.getTime() + 5 * MINUTE_MS).toISOString();

    const body = await report(`service_account_id=${accountA}&from=${from}&to=${to}`);

    expect(body.credentials.map((lease: any) => lease.lease_id).sort()).toEqual([leases["a"], leases["aToken"]].sort());
    expect(body.affected.service_accounts).toEqual([expect.objectContaining({ id: accountA })]);
  });

  it("records the steps taken since, and proposes a compromise rotation until one started", async () => {
    const before = await report(`fingerprint=${fingerprint}`);
    expect(before.secrets_to_rotate).toEqual([{ id: leakedSecret.id, name: leakedSecret.name }]);
    expect(before.next_steps).toEqual([`secrets-broker rotate ${leakedSecret.name} --compromise --reason "incident response" --wait`]);

    await broker.request("POST", `/v1/leases/${leases["b"]}/revoke`, { token: broker.tokens.operator, body: { reason: "leaked in a ticket" } });
    broker.clock.advance(1000);
    const rotation = await broker.request("POST", `/v1/secrets/${leakedSecret.id}/rotate`, { token: broker.tokens.operator, body: { reason: "leak", mode: "compromise" } });
    expect(rotation.status, rotation.text).toBe(202);
    const after = await report(`fingerprint=${fingerprint}`);

    expect(after.actions_since.map((action: any) => action.action)).toEqual(["lease.revoke", "rotation.start"]);
    expect(after.actions_since[0]).toMatchObject({ target: leases["b"], detail: "leaked in a ticket" });
    expect(after.actions_since[1]).toMatchObject({ target: leakedSecret.id });
    expect(after.actions_since[1].detail).toMatch(/^compromise rotation rot_/);
    expect(after.secrets_to_rotate).toEqual([]);
    expect(after.next_steps).toEqual([]);
    expect(after.nis2_article_23.mitigations_taken).toHaveLength(2);
  });

  it("proposes a rotation when the leaked version is current", async () => {
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);
    broker.clock.advance(MINUTE_MS);
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: leakedSecret.name, scopes: ["secrets:read"] });
    const current = await obtainCredential(broker, accessToken, { secret: leakedSecret.name, ttl: 600 });
    const lookup = await broker.request("POST", "/v1/fingerprints", { token: broker.tokens.operator, body: { value: current.data.value } });

    const body = await report(`fingerprint=${lookup.json.fingerprint}`);

    expect(body.matched_versions).toEqual([expect.objectContaining({ secret_id: leakedSecret.id, version: "2" })]);
    expect(body.actions_since).toEqual([]);
    expect(body.secrets_to_rotate).toEqual([{ id: leakedSecret.id, name: leakedSecret.name }]);
  });

  it.each([
    ["missing value", {}],
    ["number value", { value: 12345 }],
  ])("fingerprint rejects %s", async (_case, body) => {
    const response = await broker.request("POST", "/v1/fingerprints", { token: broker.tokens.operator, body });

    expect(response.status).toBe(400);
    expect(response.json.detail).toContain("value: must be a string");
  });

  it("keeps the leaked value out of audit rows and reports", async () => {
    const rows = await broker.query<{ details: unknown }>("select details from audit_events");
    const body = await report(`fingerprint=${fingerprint}`);

    expect(JSON.stringify(rows)).not.toContain(LEAKED);
    expect(JSON.stringify(body)).not.toContain(LEAKED);
    expect(JSON.stringify(rows)).toContain(fingerprint);
  });

  it.each([
    ["neither fingerprint nor account", "", "fingerprint"],
    ["an account without from", `service_account_id=sa_${"0".repeat(24)}`, "from"],
    ["a malformed fingerprint", "fingerprint=sha256:abc", "fingerprint"],
    ["to before from", `fingerprint=hmac-sha256:${"a".repeat(64)}&from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z`, "to"],
    ["an unknown parameter", `fingerprint=hmac-sha256:${"a".repeat(64)}&secret=x`, "secret"],
  ])("rejects %s", async (_name, query, field) => {
    const response = await broker.request("GET", `/v1/incident-report?${query}`, { token: broker.tokens.auditor });

    expectProblem(response, 400, "validation_failed");
    expect(JSON.stringify(response.json.invalid_params)).toContain(field);
  });
});
