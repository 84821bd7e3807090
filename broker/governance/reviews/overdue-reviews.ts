import { and, asc, eq, sql } from "drizzle-orm";
import type { Executor } from "../../db/database.js";
import { serviceAccounts } from "../../db/schema.js";
import { nextReviewSql } from "../../register/service-accounts-service.js";
import type { OverdueReviewView } from "./review-schemas.js";

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Lists active service accounts whose access review is overdue at `now`, most overdue
 * first. `beyond_grace` marks those overdue by more than `graceDays`, which the
 * overdue-review check acts on.
 */
export async function listOverdueReviews(db: Executor, now: Date, graceDays: number): Promise<OverdueReviewView[]> {
  const at = sql`${now.toISOString()}::timestamptz`;
  const rows = await db
    .select()
    .from(serviceAccounts)
    .where(and(eq(serviceAccounts.status, "active"), sql`${nextReviewSql} < ${at}`))
    .orderBy(asc(sql`${nextReviewSql}`), asc(serviceAccounts.id));

  return rows.map((account) => {
    const due = new Date((account.lastReviewedAt ?? account.createdAt).getTime() + account.reviewIntervalDays * DAY_MS);
    const overdueMs = now.getTime() - due.getTime();
    return {
      service_account_id: account.id,
      name: account.name,
      technical_owner: account.technicalOwner,
      privileged: account.privileged,
      last_reviewed_at: account.lastReviewedAt?.toISOString() ?? null,
      next_review_at: due.toISOString(),
      days_overdue: Math.floor(overdueMs / DAY_MS),
      beyond_grace: overdueMs > graceDays * DAY_MS,
    };
  });
}
