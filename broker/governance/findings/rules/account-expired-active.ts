import { and, eq, lte } from "drizzle-orm";
import { serviceAccounts } from "../../../db/schema.js";
import type { FindingRule } from "../finding-types.js";

/**
 * An account past its expiry that is still active. The broker already rejects its credential
 * requests, but the register should show that the identity is gone.
 */
export const accountExpiredActive: FindingRule = {
  id: "account-expired-active",
  async evaluate({ db, now }) {
    const rows = await db
      .select()
      .from(serviceAccounts)
      .where(and(eq(serviceAccounts.status, "active"), lte(serviceAccounts.expiresAt, now)));

    return rows.map((account) => ({
      recordId: account.id,
      severity: "high",
      subject: { type: "service_account", id: account.id },
      records: [{ type: "service_account", id: account.id }],
      message: `service account ${account.name} (${account.id}) expired at ${account.expiresAt.toISOString()} but is still active; decommission it, or extend expires_at if it is still needed`,
    }));
  },
};
