import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { computeFindings } from "../../broker/governance/findings/compute-findings.js";
import { createGrant, createSecret, obtainCredential, workloadWithToken } from "../credentials/credential-fixtures.js";
import {
  createApplication,
  createServiceAccount,
  createTrustedIssuer,
  expectProblem,
  invalidParamNames,
} from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";
import { createWorkload, issueToken } from "../tokens/oauth-fixtures.js";
import { DAY_MS, daysFromNow } from "./governance-fixtures.js";

interface FindingView {
  id: string;
  rule: string;
  severity: string;
  subject: { type: string; id: string };
  records: { type: string; id: string }[];
  message: string;
  controls: { framework: string; id: string }[];
  suppressed: boolean;
  exception_id: string | null;
}

const SUPPLIER = { name: "Acme Payment Services Ltd", contract_ref: "CTR-2026-0142", approved_by: "cfo@example.com", approved_at: "2026-05-01T00:00:00Z" };

describe("policy findings", () => {
  let broker: TestBroker;
  let issuer: string;

  beforeAll(async () => {
    broker = await startTestBroker();
    issuer = (await createTrustedIssuer(broker)).issuer;
  });

  afterEach(() => {
    broker.clock.set(TEST_NOW);
  });

  afterAll(async () => {
    await broker.close();
  });

  /** Reads every finding as an auditor, suppressed ones included. */
  async function allFindings(): Promise<FindingView[]> {
    const response = await broker.request("GET", "/v1/findings?include_suppressed=true", { token: broker.tokens.auditor });
    expect(response.status, response.text).toBe(200);
    return response.json.items;
  }

  /** Reads the findings of one rule that name the record. */
  async function findingsOf(rule: string, recordId: string): Promise<FindingView[]> {
    return (await allFindings()).filter((finding) => finding.rule === rule && finding.records.some((record) => record.id === recordId));
  }

  function accountWithOwnedApplication(fields: Record<string, unknown> = {}) {
    return createServiceAccount(broker, { last_reviewed_at: daysFromNow(broker, -1), ...fields });
  }

  async function ownedApplication(): Promise<string> {
    return (await createApplication(broker, { business_owner: "head@example.com" })).id;
  }

  it("owner missing fires without business owner", async () => {
    const orphan = await createServiceAccount(broker, { application_id: (await createApplication(broker)).id });
    const owned = await createServiceAccount(broker, { application_id: await ownedApplication() });

    const fired = await findingsOf("account-owner-missing", orphan.id);

    expect(fired).toHaveLength(1);
    expect(fired[0]!.id).toBe(`fnd_account-owner-missing_${orphan.id}`);
    expect(fired[0]!.records).toContainEqual({ type: "application", id: orphan.application_id });
    expect(fired[0]!.message).toContain("business_owner");
    expect(await findingsOf("account-owner-missing", owned.id)).toEqual([]);
  });

  it("owner missing fires on blank owner", async () => {
    const account = await createServiceAccount(broker, { application_id: await ownedApplication() });
    await broker.query(`update service_accounts set technical_owner = ' ' where id = '${account.id}'`);

    const fired = await findingsOf("account-owner-missing", account.id);

    expect(fired).toHaveLength(1);
    expect(fired[0]!.message).toContain("no technical owner");
  });

  it("expired active account fires", async () => {
    const expiring = await accountWithOwnedApplication({ expires_at: daysFromNow(broker, 1) });
    const suspended = await accountWithOwnedApplication({ expires_at: daysFromNow(broker, 1) });
    await broker.request("POST", `/v1/service-accounts/${suspended.id}/suspend`);
    const lasting = await accountWithOwnedApplication();
    broker.clock.advance(2 * DAY_MS);

    expect(await findingsOf("account-expired-active", expiring.id)).toHaveLength(1);
    expect(await findingsOf("account-expired-active", suspended.id)).toEqual([]);
    expect(await findingsOf("account-expired-active", lasting.id)).toEqual([]);
  });

  it("review overdue fires past due date", async () => {
    const overdue = await createServiceAccount(broker, { review_interval_days: 30, last_reviewed_at: daysFromNow(broker, -40) });
    const privileged = await createServiceAccount(broker, { privileged: true, review_interval_days: 30, last_reviewed_at: daysFromNow(broker, -31) });
    const current = await createServiceAccount(broker, { review_interval_days: 30, last_reviewed_at: daysFromNow(broker, -10) });

    const fired = await findingsOf("review-overdue", overdue.id);

    expect(fired).toHaveLength(1);
    expect(fired[0]!.severity).toBe("medium");
    expect(fired[0]!.message).toContain("10 days ago");
    expect((await findingsOf("review-overdue", privileged.id))[0]?.severity).toBe("high");
    expect(await findingsOf("review-overdue", current.id)).toEqual([]);
  });

  it("privileged token TTL over cap fires", async () => {
    const long = await createServiceAccount(broker, { privileged: true, max_token_ttl: 3600 });
    const capped = await createServiceAccount(broker, { privileged: true, max_token_ttl: 900 });
    const unprivileged = await createServiceAccount(broker, { max_token_ttl: 3600 });

    const fired = await findingsOf("privileged-token-ttl", long.id);

    expect(fired).toHaveLength(1);
    expect(fired[0]!.message).toContain("3600 s");
    expect(fired[0]!.controls).toContainEqual({ framework: "CIR 2024/2690", id: "Annex 11.3" });
    expect(await findingsOf("privileged-token-ttl", capped.id)).toEqual([]);
    expect(await findingsOf("privileged-token-ttl", unprivileged.id)).toEqual([]);
  });

  it("secret past max age fires", async () => {
    const stale = await createSecret(broker, { rotation: { max_age: DAY_MS / 1000 } });
    const holder = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: holder.workload.accountId, secret: stale.name, scopes: ["secrets:read"] });
    const credential = await obtainCredential(broker, holder.accessToken, { secret: stale.name });
    const fresh = await createSecret(broker, { rotation: { max_age: (30 * DAY_MS) / 1000 } });
    const unmanaged = await createSecret(broker);
    broker.clock.advance(2 * DAY_MS);

    const fired = await findingsOf("secret-rotation-overdue", stale.id);

    expect(fired).toHaveLength(1);
    expect(fired[0]!.subject).toEqual({ type: "secret", id: stale.id });
    expect(JSON.stringify(await allFindings())).not.toContain(credential.data.value);
    expect(await findingsOf("secret-rotation-overdue", fresh.id)).toEqual([]);
    expect(await findingsOf("secret-rotation-overdue", unmanaged.id)).toEqual([]);
  });

  it("supplier grant outlasting contract fires", async () => {
    const supplier = await createServiceAccount(broker, {
      kind: "supplier",
      supplier: { ...SUPPLIER, contract_ends_at: daysFromNow(broker, 30) },
    });
    const outlasting = await createGrant(broker, { service_account_id: supplier.id, audience: "https://psp.example.net", not_after: daysFromNow(broker, 60) });
    const bounded = await createGrant(broker, { service_account_id: supplier.id, audience: "https://ledger.example.net", not_after: daysFromNow(broker, 20) });

    const fired = await findingsOf("supplier-grant-unbounded", outlasting.id);

    expect(fired).toHaveLength(1);
    expect(fired[0]!.id).toBe(`fnd_supplier-grant-unbounded_${outlasting.id}`);
    expect(fired[0]!.subject).toEqual({ type: "service_account", id: supplier.id });
    expect(fired[0]!.message).toContain("CTR-2026-0142");
    expect(await findingsOf("supplier-grant-unbounded", bounded.id)).toEqual([]);
  });

  it("supplier grant without end fires", async () => {
    const account = await createServiceAccount(broker);
    const grant = await createGrant(broker, { service_account_id: account.id, audience: "https://psp.example.net" });
    const patched = await broker.request("PATCH", `/v1/service-accounts/${account.id}`, { body: { kind: "supplier", supplier: SUPPLIER } });
    expect(patched.status, patched.text).toBe(200);

    const fired = await findingsOf("supplier-grant-unbounded", grant.id);

    expect(fired).toHaveLength(1);
    expect(fired[0]!.message).toContain("has no not_after");
  });

  it("unused account fires after threshold", async () => {
    const idle = await createServiceAccount(broker);
    const busy = await createWorkload(broker);
    broker.clock.advance(80 * DAY_MS);
    await issueToken(broker, busy);
    broker.clock.advance(11 * DAY_MS);

    const fired = await findingsOf("account-unused", idle.id);

    expect(fired).toHaveLength(1);
    expect(fired[0]!.message).toContain("never obtained a credential");
    expect(await findingsOf("account-unused", busy.accountId)).toEqual([]);
    broker.clock.advance(80 * DAY_MS);
    expect((await findingsOf("account-unused", busy.accountId))[0]?.message).toContain("last obtained a credential at");
  });

  it("account reuse across namespaces fires", async () => {
    const shared = await createServiceAccount(broker);
    const single = await createServiceAccount(broker);
    for (const [account, subject] of [
      [shared.id, "system:serviceaccount:orders:api"],
      [shared.id, "system:serviceaccount:reporting:etl"],
      [single.id, "system:serviceaccount:orders:api"],
      [single.id, "system:serviceaccount:orders:worker"],
    ] as const) {
      const bound = await broker.request("POST", `/v1/service-accounts/${account}/federated-subjects`, { body: { issuer, subject } });
      expect(bound.status, bound.text).toBe(201);
    }

    const fired = await findingsOf("account-reuse", shared.id);

    expect(fired).toHaveLength(1);
    expect(fired[0]!.records.filter((record) => record.type === "federated_subject")).toHaveLength(2);
    expect(fired[0]!.message).toContain("namespace reporting");
    expect(fired[0]!.controls).toContainEqual({ framework: "OWASP NHI Top 10 2025", id: "NHI9" });
    expect(await findingsOf("account-reuse", single.id)).toEqual([]);
  });

  it("grant without approval fires", async () => {
    const account = await createServiceAccount(broker);
    const unapproved = await createGrant(broker, { service_account_id: account.id, audience: "https://a.example.com", approved_by: undefined });
    const unjustified = await createGrant(broker, { service_account_id: account.id, audience: "https://b.example.com", justification: undefined });
    const approved = await createGrant(broker, { service_account_id: account.id, audience: "https://c.example.com" });

    expect((await findingsOf("grant-approval-missing", unapproved.id))[0]?.message).toContain("no approved_by");
    expect((await findingsOf("grant-approval-missing", unjustified.id))[0]?.message).toContain("no justification");
    expect(await findingsOf("grant-approval-missing", approved.id)).toEqual([]);
  });

  it("exception suppresses until it expires", async () => {
    const account = await createServiceAccount(broker, { privileged: true, max_token_ttl: 3600 });
    const exception = await broker.request("POST", "/v1/exceptions", {
      body: {
        control: "privileged-token-ttl",
        service_account_id: account.id,
        reason: "vendor agent cannot refresh tokens",
        compensating_controls: "network allow-list",
        accepted_by: "ciso@example.com",
        expires_at: daysFromNow(broker, 10),
      },
    });
    expect(exception.status, exception.text).toBe(201);

    const open = await broker.request("GET", "/v1/findings?rule=privileged-token-ttl", { token: broker.tokens.auditor });
    const suppressed = await findingsOf("privileged-token-ttl", account.id);
    expect(open.json.items.map((finding: FindingView) => finding.subject.id)).not.toContain(account.id);
    expect(open.json.suppressed).toBeGreaterThanOrEqual(1);
    expect(suppressed).toHaveLength(1);
    expect(suppressed[0]!.suppressed).toBe(true);
    expect(suppressed[0]!.exception_id).toBe(exception.json.id);

    broker.clock.advance(11 * DAY_MS);
    const reopened = await broker.request("GET", "/v1/findings?rule=privileged-token-ttl", { token: broker.tokens.auditor });
    const expired = await broker.request("GET", "/v1/exceptions?status=expired", { token: broker.tokens.auditor });
    const back = reopened.json.items.filter((finding: FindingView) => finding.subject.id === account.id);
    expect(back).toHaveLength(1);
    expect(back[0].suppressed).toBe(false);
    expect(back[0].exception_id).toBeNull();
    expect(expired.json.items.map((item: { id: string }) => item.id)).toContain(exception.json.id);
  });

  it("exception on another rule does not suppress", async () => {
    const account = await createServiceAccount(broker, { privileged: true, max_token_ttl: 3600 });
    await broker.request("POST", "/v1/exceptions", {
      body: {
        control: "account-unused",
        service_account_id: account.id,
        reason: "seasonal job",
        compensating_controls: "none",
        accepted_by: "ciso@example.com",
        expires_at: daysFromNow(broker, 10),
      },
    });

    const fired = await findingsOf("privileged-token-ttl", account.id);

    expect(fired[0]!.suppressed).toBe(false);
  });

  it("finding ids stay stable", async () => {
    await createServiceAccount(broker, { privileged: true, max_token_ttl: 3600 });

    const first = (await allFindings()).map((finding) => finding.id);
    const second = (await computeFindings(broker.deps, broker.clock.now())).map((finding) => finding.id);

    expect(second).toEqual(first);
    expect(new Set(first).size).toBe(first.length);
  });

  it.each([
    { case: "rule unknown", query: "rule=mfa-missing", field: "rule" },
    { case: "severity unknown", query: "severity=urgent", field: "severity" },
    { case: "include_suppressed not boolean", query: "include_suppressed=yes", field: "include_suppressed" },
    { case: "unknown filter", query: "owner=alice", field: "owner" },
  ])("rejects $case", async ({ query, field }) => {
    const response = await broker.request("GET", `/v1/findings?${query}`, { token: broker.tokens.auditor });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
  });
});
