import { and, eq, lte, max } from "drizzle-orm";
import { leases, serviceAccounts } from "../../../db/schema.js";
import type { FindingRule, RuleMatch } from "../finding-types.js";

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * An active account, registered more than BROKER_UNUSED_ACCOUNT_DAYS ago, that obtained
 * no credential (no lease of any kind) in that many days: a candidate for offboarding.
 */
export const accountUnused: FindingRule = {
  id: "account-unused",
  async evaluate({ db, now, settings }) {
    const since = new Date(now.getTime() - settings.unusedAccountDays * DAY_MS);
    const rows = await db
      .select({ account: serviceAccounts, lastIssuedAt: max(leases.issuedAt) })
      .from(serviceAccounts)
      .leftJoin(leases, eq(leases.serviceAccountId, serviceAccounts.id))
      .where(and(eq(serviceAccounts.status, "active"), lte(serviceAccounts.createdAt, since)))
      .groupBy(serviceAccounts.id);

    return rows.flatMap(({ account, lastIssuedAt }): RuleMatch[] => {
      const last = lastIssuedAt === null ? null : new Date(lastIssuedAt);
      if (last && last > since) {
        return [];
      }
      const usage = last ? `last obtained a credential at ${last.toISOString()}` : "has never obtained a credential";
      return [
        {
          recordId: account.id,
          severity: "medium",
          subject: { type: "service_account", id: account.id },
          records: [{ type: "service_account", id: account.id }],
          message: `service account ${account.name} (${account.id}) ${usage}, more than ${settings.unusedAccountDays} days ago; ask ${account.technicalOwner} whether it is still needed and decommission it if not`,
        },
      ];
    });
  },
};
