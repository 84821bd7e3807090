import type { FindingRule, RuleMatch } from "../finding-types.js";
import { grantTarget, liveGrantsOfActiveAccounts } from "./live-grants.js";

/** A live grant of an active account that names no approver or no justification (ticket or contract reference). */
export const grantApprovalMissing: FindingRule = {
  id: "grant-approval-missing",
  async evaluate({ db, now }) {
    const rows = await liveGrantsOfActiveAccounts(db, now);

    return rows.flatMap(({ grant, account }): RuleMatch[] => {
      const missing = [grant.approvedBy ? undefined : "approved_by", grant.justification ? undefined : "justification"].filter(
        (field): field is string => field !== undefined,
      );
      if (missing.length === 0) {
        return [];
      }
      return [
        {
          recordId: grant.id,
          severity: "medium",
          subject: { type: "service_account", id: account.id },
          records: [
            { type: "grant", id: grant.id },
            { type: "service_account", id: account.id },
          ],
          message: `grant ${grant.id} of service account ${account.name} (${account.id}) to ${grantTarget(grant)} has no ${missing.join(" and no ")}; record them with PATCH /v1/grants/${grant.id}, or revoke the grant`,
        },
      ];
    });
  },
};
