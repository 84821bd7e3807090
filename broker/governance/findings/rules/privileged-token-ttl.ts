import { and, eq, gt } from "drizzle-orm";
import { serviceAccounts } from "../../../db/schema.js";
import type { FindingRule } from "../finding-types.js";

/** An active privileged account whose `max_token_ttl` exceeds the privileged cap (BROKER_PRIVILEGED_TOKEN_TTL_CAP). */
export const privilegedTokenTtl: FindingRule = {
  id: "privileged-token-ttl",
  async evaluate({ db, settings }) {
    const cap = settings.privilegedTokenTtlCap;
    const rows = await db
      .select()
      .from(serviceAccounts)
      .where(and(eq(serviceAccounts.status, "active"), eq(serviceAccounts.privileged, true), gt(serviceAccounts.maxTokenTtl, cap)));

    return rows.map((account) => ({
      recordId: account.id,
      severity: "high",
      subject: { type: "service_account", id: account.id },
      records: [{ type: "service_account", id: account.id }],
      message: `privileged service account ${account.name} (${account.id}) allows access tokens of ${account.maxTokenTtl} s, more than the privileged cap of ${cap} s; lower max_token_ttl to ${cap} or less`,
    }));
  },
};
