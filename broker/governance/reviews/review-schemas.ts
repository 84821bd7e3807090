import { z } from "@hono/zod-openapi";
import { idSchema, Rfc3339 } from "../../http/common-schemas.js";
import { Owner } from "../../register/register-schemas.js";

export const REVIEW_DECISIONS = ["keep", "change", "revoke"] as const;
export type ReviewDecision = (typeof REVIEW_DECISIONS)[number];

const Notes = z.string().trim().min(1, "must not be empty").max(2000);

export const ReviewCreate = z
  .strictObject({
    decision: z.enum(REVIEW_DECISIONS).openapi({
      description: "keep leaves access as it is. change keeps access but records that it must change as the notes say. revoke suspends the account and revokes its live leases.",
    }),
    reviewer: Owner.openapi({ description: "The owner or delegate who attests the decision." }),
    notes: Notes.optional().openapi({ description: "Required for change and revoke: what to change, or why access ends." }),
  })
  .refine((value) => value.decision === "keep" || value.notes !== undefined, {
    message: "is required for decisions change and revoke: say what must change or why access ends",
    path: ["notes"],
  })
  .openapi("AccessReviewCreate");

export const AccessReview = z
  .object({
    id: z.string(),
    service_account_id: z.string(),
    decision: z.enum(REVIEW_DECISIONS),
    reviewer: z.string(),
    reviewer_is_owner: z.boolean().openapi({ description: "Whether the reviewer is the account's technical owner at the time of the review, rather than a delegate." }),
    notes: z.string().nullable(),
    reviewed_at: z.string(),
    next_review_at: z.string(),
    recorded_by: z.string(),
  })
  .openapi("AccessReview");

export const ReviewFilter = z.strictObject({
  service_account_id: idSchema("sa", "service account").optional(),
  decision: z.enum(REVIEW_DECISIONS).optional(),
  from: Rfc3339.optional().openapi({ description: "Only reviews at or after this time." }),
  to: Rfc3339.optional().openapi({ description: "Only reviews before this time." }),
});

export const OverdueReview = z
  .object({
    service_account_id: z.string(),
    name: z.string(),
    technical_owner: z.string(),
    privileged: z.boolean(),
    last_reviewed_at: z.string().nullable(),
    next_review_at: z.string(),
    days_overdue: z.number().int(),
    beyond_grace: z.boolean().openapi({ description: "Whether the review is overdue by more than BROKER_REVIEW_GRACE_DAYS." }),
  })
  .openapi("OverdueReview");

export type ReviewCreateInput = z.infer<typeof ReviewCreate>;
export type ReviewFilterInput = z.infer<typeof ReviewFilter>;
export type AccessReviewView = z.infer<typeof AccessReview>;
export type OverdueReviewView = z.infer<typeof OverdueReview>;
