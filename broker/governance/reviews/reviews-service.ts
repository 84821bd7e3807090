import { and, desc, eq, gte, lt, type SQL, sql } from "drizzle-orm";
import type { RecordAudit } from "../../audit/audit-writer.js";
import type { Executor } from "../../db/database.js";
import { newId } from "../../db/ids.js";
import { accessReviews, serviceAccounts } from "../../db/schema.js";
import { InvalidState } from "../../errors.js";
import { changeServiceAccountStatus, findServiceAccount } from "../../register/service-accounts-service.js";
import type { AccessReviewView, ReviewCreateInput, ReviewFilterInput } from "./review-schemas.js";

export type AccessReviewRow = typeof accessReviews.$inferSelect;

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Records an access review of a service account and applies its decision in the
 * caller's transaction. Every decision sets `last_reviewed_at`, so that the next review
 * falls due `review_interval_days` later. `revoke` also suspends an active account, which
 * revokes its live leases; an account already suspended stays suspended.
 */
export async function recordReview(
  tx: Executor,
  now: Date,
  record: RecordAudit,
  serviceAccountId: string,
  input: ReviewCreateInput,
  actor: string,
): Promise<AccessReviewView> {
  const account = await findServiceAccount(tx, serviceAccountId, true);
  if (account.status === "decommissioned") {
    throw new InvalidState(`service account ${serviceAccountId} is decommissioned, so it has no access left to review`);
  }

  const id = newId("rev");
  if (input.decision === "revoke" && account.status === "active") {
    const reason = `access review ${id} by ${input.reviewer} decided revoke: ${input.notes ?? "no notes"}`;
    await changeServiceAccountStatus(tx, { now: () => now }, record, serviceAccountId, "suspend", reason, actor);
  }

  const nextReviewAt = new Date(now.getTime() + account.reviewIntervalDays * DAY_MS);
  await tx.update(serviceAccounts).set({ lastReviewedAt: now, updatedAt: now }).where(eq(serviceAccounts.id, serviceAccountId));
  const [row] = await tx
    .insert(accessReviews)
    .values({
      id,
      serviceAccountId,
      decision: input.decision,
      reviewer: input.reviewer,
      reviewerIsOwner: input.reviewer === account.technicalOwner,
      notes: input.notes ?? null,
      reviewedAt: now,
      nextReviewAt,
      recordedBy: actor,
    })
    .returning();

  record({
    action: "service_account.review",
    target: serviceAccountId,
    details: {
      review_id: id,
      decision: input.decision,
      reviewer: input.reviewer,
      reviewer_is_owner: row!.reviewerIsOwner,
      notes: input.notes ?? null,
      next_review_at: nextReviewAt.toISOString(),
    },
  });
  return toReviewView(row!);
}

/** Page position for `listReviews`: the id of the last review of the previous page, and the page size. */
export interface ReviewPage {
  cursor?: string | undefined;
  limit?: number | undefined;
}

/** Lists access reviews, newest first, filtered by account, decision and time window (`from` inclusive, `to` exclusive). */
export async function listReviews(db: Executor, filter: ReviewFilterInput, page: ReviewPage = {}): Promise<AccessReviewView[]> {
  const conditions: (SQL | undefined)[] = [];
  if (filter.service_account_id) conditions.push(eq(accessReviews.serviceAccountId, filter.service_account_id));
  if (filter.decision) conditions.push(eq(accessReviews.decision, filter.decision));
  if (filter.from) conditions.push(gte(accessReviews.reviewedAt, new Date(filter.from)));
  if (filter.to) conditions.push(lt(accessReviews.reviewedAt, new Date(filter.to)));
  if (page.cursor) {
    conditions.push(
      sql`(${accessReviews.reviewedAt}, ${accessReviews.id}) < (select reviewed_at, id from access_reviews where id = ${page.cursor})`,
    );
  }

  const query = db
    .select()
    .from(accessReviews)
    .where(and(...conditions))
    .orderBy(desc(accessReviews.reviewedAt), desc(accessReviews.id));
  const rows = page.limit === undefined ? await query : await query.limit(page.limit);
  return rows.map(toReviewView);
}

export function toReviewView(row: AccessReviewRow): AccessReviewView {
  return {
    id: row.id,
    service_account_id: row.serviceAccountId,
    decision: row.decision as AccessReviewView["decision"],
    reviewer: row.reviewer,
    reviewer_is_owner: row.reviewerIsOwner,
    notes: row.notes,
    reviewed_at: row.reviewedAt.toISOString(),
    next_review_at: row.nextReviewAt.toISOString(),
    recorded_by: row.recordedBy,
  };
}
