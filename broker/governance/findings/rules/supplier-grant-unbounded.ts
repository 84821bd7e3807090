import type { FindingRule, RuleMatch } from "../finding-types.js";
import { grantTarget, liveGrantsOfActiveAccounts } from "./live-grants.js";

/**
 * A live grant of a supplier account that has no `not_after`, or whose `not_after` is
 * later than the supplier block's `contract_ends_at`. The broker requires `not_after` on
 * new supplier grants, so the first case comes from an account made a supplier after
 * its grants were created.
 */
export const supplierGrantUnbounded: FindingRule = {
  id: "supplier-grant-unbounded",
  async evaluate({ db, now }) {
    const rows = await liveGrantsOfActiveAccounts(db, now);

    return rows.flatMap(({ grant, account }): RuleMatch[] => {
      if (account.kind !== "supplier" || !account.supplier) {
        return [];
      }
      const contractEnd = account.supplier.contract_ends_at ? new Date(account.supplier.contract_ends_at) : undefined;
      let problem: string;
      if (!grant.notAfter) {
        problem = "has no not_after";
      } else if (contractEnd && grant.notAfter > contractEnd) {
        problem = `ends at ${grant.notAfter.toISOString()}, after the contract ${account.supplier.contract_ref} ends at ${contractEnd.toISOString()}`;
      } else {
        return [];
      }
      const end = contractEnd ? `the contract end ${contractEnd.toISOString()}` : "the end of the supplier's contract";
      return [
        {
          recordId: grant.id,
          severity: "high",
          subject: { type: "service_account", id: account.id },
          records: [
            { type: "grant", id: grant.id },
            { type: "service_account", id: account.id },
          ],
          message: `grant ${grant.id} of supplier account ${account.name} (${account.id}, ${account.supplier.name}) to ${grantTarget(grant)} ${problem}; set not_after no later than ${end} with PATCH /v1/grants/${grant.id}`,
        },
      ];
    });
  },
};
