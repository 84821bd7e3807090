import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../../deps.js";
import { idParams, jsonBody, jsonResponse, PageQuery, pageOf } from "../../http/common-schemas.js";
import { requestContext } from "../../http/request-context.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../../http/route-helpers.js";
import { findServiceAccount } from "../../register/service-accounts-service.js";
import { listOverdueReviews } from "./overdue-reviews.js";
import { AccessReview, OverdueReview, ReviewCreate, ReviewFilter } from "./review-schemas.js";
import { listReviews, recordReview } from "./reviews-service.js";

const ReviewPage = z.object({ items: z.array(AccessReview), next_cursor: z.string().nullable() }).openapi("AccessReviewPage");
const OverdueReviewList = z
  .object({
    grace_days: z.number().int(),
    action: z.enum(["warn", "suspend"]),
    items: z.array(OverdueReview),
  })
  .openapi("OverdueReviewList");
const AccountId = idParams("sa", "service account");

export function registerReviewRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/service-accounts/{id}/reviews",
      tags: ["governance"],
      summary: "Record an access review of a service account: keep, change or revoke",
      description: "Sets last_reviewed_at, so the next review is due review_interval_days later. revoke also suspends the account and revokes its live leases.",
      request: { params: AccountId, body: jsonBody(ReviewCreate) },
      responses: { 201: jsonResponse(AccessReview, "The recorded review") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = c.req.valid("json");
      const actor = requestContext(c).actor;
      const review = await inAuditedTransaction(deps, c, (tx, record) => recordReview(tx, deps.clock.now(), record, id, input, actor));
      return c.json(review, 201);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/service-accounts/{id}/reviews",
      tags: ["governance"],
      summary: "List the access reviews of a service account, newest first",
      request: { params: AccountId, query: z.object(PageQuery) },
      responses: { 200: jsonResponse(ReviewPage, "One page of reviews") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { limit, cursor } = c.req.valid("query");
      await findServiceAccount(deps.db, id);
      return c.json(pageOf(await listReviews(deps.db, { service_account_id: id }, { cursor, limit: limit + 1 }), limit), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/reviews",
      tags: ["governance"],
      summary: "List access reviews of every account, newest first, with filters",
      request: { query: ReviewFilter.extend(PageQuery) },
      responses: { 200: jsonResponse(ReviewPage, "One page of reviews") },
    }),
    async (c) => {
      const { limit, cursor, ...filter } = c.req.valid("query");
      return c.json(pageOf(await listReviews(deps.db, filter, { cursor, limit: limit + 1 }), limit), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/reviews/overdue",
      tags: ["governance"],
      summary: "List active accounts whose access review is overdue, most overdue first",
      responses: { 200: jsonResponse(OverdueReviewList, "Overdue reviews, with the grace period and action the broker applies") },
    }),
    async (c) => {
      const items = await listOverdueReviews(deps.db, deps.clock.now(), deps.config.reviewGraceDays);
      return c.json({ grace_days: deps.config.reviewGraceDays, action: deps.config.reviewOverdueAction, items }, 200);
    },
  );
}
