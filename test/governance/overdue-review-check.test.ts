import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkOverdueReviews } from "../../broker/governance/reviews/overdue-review-check.js";
import { startOverdueReviewCheck } from "../../broker/governance/reviews/overdue-review-job.js";
import { auditEventsAfter, createServiceAccount, lastAuditSeq } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { createWorkload, issueToken } from "../tokens/oauth-fixtures.js";
import { DAY_MS, daysFromNow } from "./governance-fixtures.js";

const GRACE_DAYS = 10;
const INTERVAL_DAYS = 30;

/** Creates an account whose review fell due `overdueDays` days ago. */
function overdueAccount(broker: TestBroker, overdueDays: number) {
  return createServiceAccount(broker, {
    review_interval_days: INTERVAL_DAYS,
    last_reviewed_at: daysFromNow(broker, -(INTERVAL_DAYS + overdueDays)),
  });
}

async function statusOf(broker: TestBroker, id: string): Promise<{ status: string; status_reason: string | null }> {
  return (await broker.request("GET", `/v1/service-accounts/${id}`)).json;
}

describe("overdue-review check", () => {
  describe("warn action", () => {
    let broker: TestBroker;

    beforeAll(async () => {
      broker = await startTestBroker({ config: { reviewOverdueAction: "warn", reviewGraceDays: GRACE_DAYS } });
    });

    afterAll(async () => {
      await broker.close();
    });

    it("logs accounts beyond grace only", async () => {
      const withinGrace = await overdueAccount(broker, 5);
      const beyondGrace = await overdueAccount(broker, 15);
      const seq = await lastAuditSeq(broker);

      const outcome = await checkOverdueReviews(broker.deps);

      expect(outcome.warned).toEqual([beyondGrace.id]);
      expect(outcome.suspended).toEqual([]);
      expect((await statusOf(broker, beyondGrace.id)).status).toBe("active");
      expect((await statusOf(broker, withinGrace.id)).status).toBe("active");
      expect(await auditEventsAfter(broker, seq)).toEqual([]);
      const warning = broker.logs.find((line) => line.includes("access reviews overdue beyond the grace period"));
      expect(warning).toContain(beyondGrace.id);
      expect(warning).not.toContain(withinGrace.id);
    });
  });

  describe("suspend action", () => {
    let broker: TestBroker;

    beforeAll(async () => {
      broker = await startTestBroker({ config: { reviewOverdueAction: "suspend", reviewGraceDays: GRACE_DAYS } });
    });

    afterAll(async () => {
      await broker.close();
    });

    it("suspends once grace period ends", async () => {
      const workload = await createWorkload(broker, { review_interval_days: INTERVAL_DAYS, last_reviewed_at: daysFromNow(broker, -(INTERVAL_DAYS + 5)) });
      const early = await checkOverdueReviews(broker.deps);
      expect(early.suspended).not.toContain(workload.accountId);
      expect((await statusOf(broker, workload.accountId)).status).toBe("active");

      broker.clock.advance(6 * DAY_MS);
      const token = await issueToken(broker, workload);
      const seq = await lastAuditSeq(broker);
      const late = await checkOverdueReviews(broker.deps);

      expect(late.suspended).toContain(workload.accountId);
      const account = await statusOf(broker, workload.accountId);
      expect(account.status).toBe("suspended");
      expect(account.status_reason).toContain(`grace period of ${GRACE_DAYS} days`);
      const lease = (await broker.request("GET", `/v1/leases/${token.lease_id}`)).json;
      expect(lease.revoked_at).not.toBeNull();
      const events = await auditEventsAfter(broker, seq);
      const suspend = events.find((event) => event.action === "service_account.suspend" && event.target === workload.accountId);
      expect(suspend?.actor).toBe("system:review-check");
      expect(suspend?.details["reason"]).toContain("access review overdue");
      expect(events.some((event) => event.action === "lease.revoke" && event.target === token.lease_id)).toBe(true);
    });

    it("scheduled job runs the check", async () => {
      const account = await overdueAccount(broker, 20);
      const job = startOverdueReviewCheck(broker.deps);

      await job.runNow();
      await job.stop();

      expect((await statusOf(broker, account.id)).status).toBe("suspended");
      expect(broker.logs.some((line) => line.includes("overdue-review check stopped"))).toBe(true);
    });

    it("second run suspends nothing again", async () => {
      const account = await overdueAccount(broker, 20);
      const first = await checkOverdueReviews(broker.deps);
      const seq = await lastAuditSeq(broker);

      const second = await checkOverdueReviews(broker.deps);

      expect(first.suspended).toContain(account.id);
      expect(second.suspended).not.toContain(account.id);
      expect(await auditEventsAfter(broker, seq)).toEqual([]);
    });

    it("review recorded in time prevents suspension", async () => {
      const account = await overdueAccount(broker, 20);
      await broker.request("POST", `/v1/service-accounts/${account.id}/reviews`, { body: { decision: "keep", reviewer: "alice@example.com" } });

      const outcome = await checkOverdueReviews(broker.deps);

      expect(outcome.suspended).not.toContain(account.id);
      expect((await statusOf(broker, account.id)).status).toBe("active");
    });

    it("live exception prevents suspension until expiry", async () => {
      const account = await overdueAccount(broker, 20);
      const exception = await broker.request("POST", "/v1/exceptions", {
        body: {
          control: "review-overdue",
          service_account_id: account.id,
          reason: "owner on leave",
          compensating_controls: "weekly lease report to the CISO",
          accepted_by: "ciso@example.com",
          expires_at: daysFromNow(broker, 7),
        },
      });
      expect(exception.status, exception.text).toBe(201);

      const covered = await checkOverdueReviews(broker.deps);
      expect(covered.excepted).toContain(account.id);
      expect((await statusOf(broker, account.id)).status).toBe("active");

      broker.clock.advance(8 * DAY_MS);
      const uncovered = await checkOverdueReviews(broker.deps);
      expect(uncovered.suspended).toContain(account.id);
      expect((await statusOf(broker, account.id)).status).toBe("suspended");
    });
  });
});
