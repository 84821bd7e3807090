import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  auditEventsAfter,
  createServiceAccount,
  expectProblem,
  invalidParamNames,
  lastAuditSeq,
} from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";
import { createWorkload, issueToken } from "../tokens/oauth-fixtures.js";
import { DAY_MS, daysFromNow, governanceSnapshot } from "./governance-fixtures.js";

describe("access reviews", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterEach(() => {
    broker.clock.set(TEST_NOW);
  });

  afterAll(async () => {
    await broker.close();
  });

  function review(accountId: string, body: unknown, token?: string) {
    return broker.request("POST", `/v1/service-accounts/${accountId}/reviews`, { body, token });
  }

  it.each(["keep", "change"])("%s moves next review date", async (decision) => {
    const account = await createServiceAccount(broker, { review_interval_days: 30, last_reviewed_at: daysFromNow(broker, -40) });
    broker.clock.advance(DAY_MS);
    const seq = await lastAuditSeq(broker);

    const response = await review(account.id, { decision, reviewer: "alice@example.com", notes: "drop the write scope" });

    expect(response.status, response.text).toBe(201);
    expect(response.json.id).toMatch(/^rev_[0-9a-f]{24}$/);
    expect(response.json.reviewed_at).toBe(broker.clock.now().toISOString());
    expect(response.json.next_review_at).toBe(daysFromNow(broker, 30));
    expect(response.json.reviewer_is_owner).toBe(true);
    const after = (await broker.request("GET", `/v1/service-accounts/${account.id}`)).json;
    expect(after.status).toBe("active");
    expect(after.last_reviewed_at).toBe(broker.clock.now().toISOString());
    expect(after.next_review_at).toBe(daysFromNow(broker, 30));
    expect(after.review_overdue).toBe(false);
    const events = await auditEventsAfter(broker, seq);
    expect(events.map((event) => event.action)).toEqual(["service_account.review"]);
    expect(events[0]!.target).toBe(account.id);
    expect(events[0]!.details["decision"]).toBe(decision);
    expect(events[0]!.details["review_id"]).toBe(response.json.id);
  });

  it("delegate reviewer is recorded", async () => {
    const account = await createServiceAccount(broker);

    const response = await review(account.id, { decision: "keep", reviewer: "deputy@example.com" });

    expect(response.status).toBe(201);
    expect(response.json.reviewer_is_owner).toBe(false);
    expect(response.json.notes).toBeNull();
  });

  it("revoke suspends account and revokes leases", async () => {
    const workload = await createWorkload(broker);
    const token = await issueToken(broker, workload);
    const seq = await lastAuditSeq(broker);

    const response = await review(workload.accountId, { decision: "revoke", reviewer: "alice@example.com", notes: "integration retired" });

    expect(response.status, response.text).toBe(201);
    const account = (await broker.request("GET", `/v1/service-accounts/${workload.accountId}`)).json;
    expect(account.status).toBe("suspended");
    expect(account.status_reason).toContain(response.json.id);
    expect(account.status_reason).toContain("integration retired");
    const lease = (await broker.request("GET", `/v1/leases/${token.lease_id}`)).json;
    expect(lease.revoked_at).toBe(broker.clock.now().toISOString());
    const actions = (await auditEventsAfter(broker, seq)).map((event) => event.action);
    expect(actions).toContain("service_account.suspend");
    expect(actions).toContain("lease.revoke");
    expect(actions).toContain("service_account.review");
  });

  it("revoke of suspended account keeps status", async () => {
    const account = await createServiceAccount(broker);
    await broker.request("POST", `/v1/service-accounts/${account.id}/suspend`, { body: { reason: "incident" } });

    const response = await review(account.id, { decision: "revoke", reviewer: "alice@example.com", notes: "not needed" });

    expect(response.status).toBe(201);
    const after = (await broker.request("GET", `/v1/service-accounts/${account.id}`)).json;
    expect(after.status).toBe("suspended");
    expect(after.status_reason).toBe("incident");
  });

  it("decommissioned account rejected with 409", async () => {
    const account = await createServiceAccount(broker);
    await broker.request("POST", `/v1/service-accounts/${account.id}/decommission`);
    const before = await governanceSnapshot(broker);

    const response = await review(account.id, { decision: "keep", reviewer: "alice@example.com" });

    expectProblem(response, 409, "invalid_state");
    expect(await governanceSnapshot(broker)).toEqual(before);
  });

  it("unknown account rejected with 404", async () => {
    const response = await review("sa_0123456789abcdef01234567", { decision: "keep", reviewer: "alice@example.com" });

    expectProblem(response, 404, "not_found");
  });

  it.each([
    { case: "decision missing", body: { reviewer: "a@example.com" }, field: "decision" },
    { case: "decision unknown", body: { decision: "extend", reviewer: "a@example.com" }, field: "decision" },
    { case: "reviewer missing", body: { decision: "keep" }, field: "reviewer" },
    { case: "reviewer blank", body: { decision: "keep", reviewer: "  " }, field: "reviewer" },
    { case: "reviewer as number", body: { decision: "keep", reviewer: 7 }, field: "reviewer" },
    { case: "notes missing for change", body: { decision: "change", reviewer: "a@example.com" }, field: "notes" },
    { case: "notes missing for revoke", body: { decision: "revoke", reviewer: "a@example.com" }, field: "notes" },
    { case: "notes empty", body: { decision: "keep", reviewer: "a@example.com", notes: "" }, field: "notes" },
    { case: "notes over 2000 characters", body: { decision: "keep", reviewer: "a@example.com", notes: "x".repeat(2001) }, field: "notes" },
    { case: "unknown field", body: { decision: "keep", reviewer: "a@example.com", reviewed_at: TEST_NOW }, field: "reviewed_at" },
  ])("rejects $case", async ({ body, field }) => {
    const account = await createServiceAccount(broker);
    const before = await governanceSnapshot(broker);

    const response = await review(account.id, body);

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
    expect(await governanceSnapshot(broker)).toEqual(before);
  });

  it("rejects malformed account id", async () => {
    const response = await review("sa_nope", { decision: "keep", reviewer: "a@example.com" });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual(["id"]);
  });

  it("lists reviews newest first", async () => {
    const account = await createServiceAccount(broker);
    const first = await review(account.id, { decision: "keep", reviewer: "alice@example.com" });
    broker.clock.advance(DAY_MS);
    const second = await review(account.id, { decision: "change", reviewer: "alice@example.com", notes: "narrow scopes" });

    const perAccount = await broker.request("GET", `/v1/service-accounts/${account.id}/reviews`, { token: broker.tokens.auditor });
    const filtered = await broker.request("GET", `/v1/reviews?service_account_id=${account.id}&decision=change`, { token: broker.tokens.auditor });
    const paged = await broker.request("GET", `/v1/service-accounts/${account.id}/reviews?limit=1`);
    const nextPage = await broker.request("GET", `/v1/service-accounts/${account.id}/reviews?limit=1&cursor=${paged.json.next_cursor}`);

    expect(perAccount.status).toBe(200);
    expect(perAccount.json.items.map((item: { id: string }) => item.id)).toEqual([second.json.id, first.json.id]);
    expect(filtered.json.items.map((item: { id: string }) => item.id)).toEqual([second.json.id]);
    expect(paged.json.items.map((item: { id: string }) => item.id)).toEqual([second.json.id]);
    expect(nextPage.json.items.map((item: { id: string }) => item.id)).toEqual([first.json.id]);
    expect(nextPage.json.next_cursor).toBeNull();
  });

  it.each([
    { case: "decision unknown", query: "decision=extend", field: "decision" },
    { case: "from not a time", query: "from=yesterday", field: "from" },
    { case: "account id malformed", query: "service_account_id=sa_1", field: "service_account_id" },
    { case: "unknown filter", query: "reviewer=alice", field: "reviewer" },
  ])("review list rejects $case", async ({ query, field }) => {
    const response = await broker.request("GET", `/v1/reviews?${query}`);

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
  });

  it("lists overdue reviews with grace flag", async () => {
    const overdue = await createServiceAccount(broker, { review_interval_days: 30, last_reviewed_at: daysFromNow(broker, -35) });
    const beyondGrace = await createServiceAccount(broker, { review_interval_days: 30, last_reviewed_at: daysFromNow(broker, -60) });
    const current = await createServiceAccount(broker, { review_interval_days: 30, last_reviewed_at: daysFromNow(broker, -5) });

    const response = await broker.request("GET", "/v1/reviews/overdue", { token: broker.tokens.auditor });

    expect(response.status).toBe(200);
    expect(response.json.grace_days).toBe(14);
    expect(response.json.action).toBe("warn");
    const byId = new Map(response.json.items.map((item: { service_account_id: string }) => [item.service_account_id, item]));
    expect(byId.get(overdue.id)).toMatchObject({ days_overdue: 5, beyond_grace: false });
    expect(byId.get(beyondGrace.id)).toMatchObject({ days_overdue: 30, beyond_grace: true });
    expect(byId.has(current.id)).toBe(false);
  });
});
