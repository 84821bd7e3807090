import { eq, sql } from "drizzle-orm";
import { applications, serviceAccounts } from "../../../db/schema.js";
import type { FindingRule } from "../finding-types.js";

/**
 * An active account has no accountable owner when its technical owner is blank (possible
 * only in rows written before the register checked it) or when its application has no
 * business owner, so that no one is accountable for the business risk of the identity.
 */
export const accountOwnerMissing: FindingRule = {
  id: "account-owner-missing",
  async evaluate({ db }) {
    const rows = await db
      .select({ account: serviceAccounts, application: applications })
      .from(serviceAccounts)
      .innerJoin(applications, eq(applications.id, serviceAccounts.applicationId))
      .where(sql`${serviceAccounts.status} = 'active' and (trim(${serviceAccounts.technicalOwner}) = '' or ${applications.businessOwner} is null)`);

    return rows.map(({ account, application }) => {
      const ownerBlank = account.technicalOwner.trim() === "";
      const message = ownerBlank
        ? `service account ${account.name} (${account.id}) has no technical owner; set technical_owner with PATCH /v1/service-accounts/${account.id}`
        : `service account ${account.name} (${account.id}) has no accountable business owner because application ${application.name} (${application.id}) has none; set business_owner with PATCH /v1/applications/${application.id}`;
      return {
        recordId: account.id,
        severity: "high",
        subject: { type: "service_account", id: account.id },
        records: [
          { type: "service_account", id: account.id },
          { type: "application", id: application.id },
        ],
        message,
      };
    });
  },
};
