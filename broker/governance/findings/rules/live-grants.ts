import { and, eq, gt, isNull, or } from "drizzle-orm";
import type { Executor } from "../../../db/database.js";
import { grants, serviceAccounts } from "../../../db/schema.js";

/** Reads grants that are not revoked and not past `not_after`, of active accounts, with their account. */
export function liveGrantsOfActiveAccounts(db: Executor, now: Date) {
  return db
    .select({ grant: grants, account: serviceAccounts })
    .from(grants)
    .innerJoin(serviceAccounts, eq(serviceAccounts.id, grants.serviceAccountId))
    .where(and(eq(serviceAccounts.status, "active"), isNull(grants.revokedAt), or(isNull(grants.notAfter), gt(grants.notAfter, now))));
}

/** Names a grant in a message: its secret id or audience. */
export function grantTarget(grant: { secretId: string | null; audience: string | null }): string {
  return grant.secretId ? `secret ${grant.secretId}` : `audience ${grant.audience}`;
}
