import { listOverdueReviews } from "../../reviews/overdue-reviews.js";
import type { FindingRule } from "../finding-types.js";

/** An active account whose access review is overdue: high for privileged accounts and past the grace period, medium otherwise. */
export const reviewOverdue: FindingRule = {
  id: "review-overdue",
  async evaluate({ db, now, settings }) {
    const overdue = await listOverdueReviews(db, now, settings.reviewGraceDays);

    return overdue.map((item) => ({
      recordId: item.service_account_id,
      severity: item.privileged || item.beyond_grace ? "high" : "medium",
      subject: { type: "service_account", id: item.service_account_id },
      records: [{ type: "service_account", id: item.service_account_id }],
      message:
        `access review of service account ${item.name} (${item.service_account_id}) was due at ${item.next_review_at}, ` +
        `${item.days_overdue} days ago; ${item.technical_owner} or a delegate should record one with POST /v1/service-accounts/${item.service_account_id}/reviews`,
    }));
  },
};
