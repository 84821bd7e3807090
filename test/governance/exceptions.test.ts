import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { listExceptions } from "../../broker/governance/exceptions/exceptions-service.js";
import { createSecret } from "../credentials/credential-fixtures.js";
import {
  auditEventsAfter,
  createServiceAccount,
  expectProblem,
  invalidParamNames,
  lastAuditSeq,
} from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";
import { DAY_MS, daysFromNow, governanceSnapshot } from "./governance-fixtures.js";

describe("exceptions register", () => {
  let broker: TestBroker;
  let accountId: string;
  let secretId: string;

  beforeAll(async () => {
    broker = await startTestBroker();
    accountId = (await createServiceAccount(broker)).id;
    secretId = (await createSecret(broker)).id;
  });

  afterEach(() => {
    broker.clock.set(TEST_NOW);
  });

  afterAll(async () => {
    await broker.close();
  });

  function validBody(fields: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      control: "privileged-token-ttl",
      service_account_id: accountId,
      reason: "legacy batch job cannot refresh tokens",
      compensating_controls: "network allow-list and daily lease review",
      accepted_by: "ciso@example.com",
      expires_at: daysFromNow(broker, 90),
      ...fields,
    };
  }

  it("creates, reads and revokes an exception", async () => {
    const seq = await lastAuditSeq(broker);

    const created = await broker.request("POST", "/v1/exceptions", { body: validBody({ control: "account-unused" }) });
    const read = await broker.request("GET", `/v1/exceptions/${created.json.id}`, { token: broker.tokens.auditor });
    const revoked = await broker.request("POST", `/v1/exceptions/${created.json.id}/revoke`, { body: { reason: "job migrated" } });
    const again = await broker.request("POST", `/v1/exceptions/${created.json.id}/revoke`);

    expect(created.status, created.text).toBe(201);
    expect(created.json.id).toMatch(/^exc_[0-9a-f]{24}$/);
    expect(created.json.status).toBe("live");
    expect(created.json.accepted_at).toBe(TEST_NOW);
    expect(read.json).toEqual(created.json);
    expect(revoked.status).toBe(200);
    expect(revoked.json.status).toBe("revoked");
    expect(revoked.json.revoke_reason).toBe("job migrated");
    expectProblem(again, 409, "invalid_state");
    const actions = (await auditEventsAfter(broker, seq)).map((event) => `${event.action} ${event.target}`);
    expect(actions).toEqual([`exception.create ${created.json.id}`, `exception.revoke ${created.json.id}`]);
  });

  it("covers a secret", async () => {
    const response = await broker.request("POST", "/v1/exceptions", {
      body: validBody({ control: "secret-rotation-overdue", service_account_id: undefined, secret_id: secretId }),
    });

    expect(response.status, response.text).toBe(201);
    expect(response.json.secret_id).toBe(secretId);
    expect(response.json.service_account_id).toBeNull();
  });

  it("second live exception rejected with 409", async () => {
    const first = await broker.request("POST", "/v1/exceptions", { body: validBody({ control: "account-reuse" }) });
    const before = await governanceSnapshot(broker);

    const second = await broker.request("POST", "/v1/exceptions", { body: validBody({ control: "account-reuse" }) });

    expect(first.status).toBe(201);
    expectProblem(second, 409, "conflict");
    expect(second.json.detail).toContain(first.json.id);
    expect(await governanceSnapshot(broker)).toEqual(before);
  });

  it("expired exception listed as expired", async () => {
    const created = await broker.request("POST", "/v1/exceptions", {
      body: validBody({ control: "grant-approval-missing", expires_at: daysFromNow(broker, 10) }),
    });
    broker.clock.advance(11 * DAY_MS);

    const expired = await broker.request("GET", "/v1/exceptions?status=expired", { token: broker.tokens.auditor });
    const live = await broker.request("GET", "/v1/exceptions?status=live");
    const byControl = await listExceptions(broker.deps.db, broker.clock.now(), { control: "grant-approval-missing" });

    expect(expired.json.items.map((item: { id: string }) => item.id)).toContain(created.json.id);
    expect(live.json.items.map((item: { id: string }) => item.id)).not.toContain(created.json.id);
    expect(byControl.map((item) => item.status)).toEqual(["expired"]);
  });

  it("unknown exception returns 404", async () => {
    const response = await broker.request("GET", "/v1/exceptions/exc_0123456789abcdef01234567");

    expectProblem(response, 404, "not_found");
  });

  it.each([
    { case: "control missing", fields: { control: undefined }, field: "control" },
    { case: "control unknown", fields: { control: "mfa-missing" }, field: "control" },
    { case: "no record", fields: { service_account_id: undefined }, field: "service_account_id" },
    { case: "account and secret", fields: { secret_id: "sec_0123456789abcdef01234567" }, field: "service_account_id" },
    { case: "account id malformed", fields: { service_account_id: "sa_42" }, field: "service_account_id" },
    { case: "account unknown", fields: { service_account_id: "sa_0123456789abcdef01234567" }, field: "service_account_id" },
    {
      case: "secret unknown",
      fields: { service_account_id: undefined, secret_id: "sec_0123456789abcdef01234567" },
      field: "secret_id",
    },
    { case: "reason missing", fields: { reason: undefined }, field: "reason" },
    { case: "reason blank", fields: { reason: "   " }, field: "reason" },
    { case: "compensating controls missing", fields: { compensating_controls: undefined }, field: "compensating_controls" },
    { case: "accepted_by missing", fields: { accepted_by: undefined }, field: "accepted_by" },
    { case: "accepted_at in future", fields: { accepted_at: "2026-06-02T00:00:00Z" }, field: "accepted_at" },
    { case: "accepted_at not a time", fields: { accepted_at: "today" }, field: "accepted_at" },
    { case: "expires_at missing", fields: { expires_at: undefined }, field: "expires_at" },
    { case: "expires_at in past", fields: { expires_at: "2026-05-01T00:00:00Z" }, field: "expires_at" },
    { case: "expires_at beyond one year", fields: { expires_at: "2027-06-02T12:00:00Z" }, field: "expires_at" },
    { case: "expires_at without zone", fields: { expires_at: "2026-09-01T00:00:00" }, field: "expires_at" },
    { case: "unknown field", fields: { severity: "low" }, field: "severity" },
  ])("create rejects $case", async ({ fields, field }) => {
    const before = await governanceSnapshot(broker);

    const response = await broker.request("POST", "/v1/exceptions", { body: validBody(fields) });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
    expect(await governanceSnapshot(broker)).toEqual(before);
  });

  it.each([
    { case: "status unknown", query: "status=pending", field: "status" },
    { case: "control unknown", query: "control=nope", field: "control" },
    { case: "secret id malformed", query: "secret_id=sec_1", field: "secret_id" },
    { case: "limit zero", query: "limit=0", field: "limit" },
  ])("list rejects $case", async ({ query, field }) => {
    const response = await broker.request("GET", `/v1/exceptions?${query}`);

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
  });

  it.each([
    { case: "reason empty", body: { reason: "" }, field: "reason" },
    { case: "unknown field", body: { until: "2027-01-01T00:00:00Z" }, field: "until" },
  ])("revoke rejects $case", async ({ body, field }) => {
    const account = await createServiceAccount(broker);
    const created = await broker.request("POST", "/v1/exceptions", { body: validBody({ control: "account-owner-missing", service_account_id: account.id }) });
    const before = await governanceSnapshot(broker);

    const response = await broker.request("POST", `/v1/exceptions/${created.json.id}/revoke`, { body });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
    expect(await governanceSnapshot(broker)).toEqual(before);
  });

  it("malformed exception id rejected", async () => {
    const response = await broker.request("POST", "/v1/exceptions/exc_1/revoke");

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual(["id"]);
  });
});
