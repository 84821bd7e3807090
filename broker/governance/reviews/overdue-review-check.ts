import type { RequestContext } from "../../audit/audit-types.js";
import type { BrokerDeps } from "../../deps.js";
import { revokingTransaction } from "../../leases/revoking-transaction.js";
import { loggableError } from "../../logging/logger.js";
import { changeServiceAccountStatus, findServiceAccount } from "../../register/service-accounts-service.js";
import { hasLiveException } from "../exceptions/exceptions-service.js";
import { listOverdueReviews } from "./overdue-reviews.js";

/** Maximum number of account ids in one log line. The count in that line includes every account. */
const MAX_IDS_PER_LOG_LINE = 20;
const REVIEW_OVERDUE_RULE = "review-overdue";

const DAY_MS = 24 * 60 * 60 * 1000;
/** Actor of the audit events the check writes. */
const CHECK_CONTEXT: RequestContext = { actor: "system:review-check", role: null, requestId: null, sourceAddress: null };

/** Accounts that one overdue-review check warned about, suspended, or skipped because a live exception covers them. */
export interface OverdueReviewOutcome {
  warned: string[];
  suspended: string[];
  excepted: string[];
}

/**
 * Acts on active accounts whose access review is overdue by more than
 * `config.reviewGraceDays`. With action `warn` it logs them. With `suspend` it suspends
 * each one, which revokes its live leases, and the audit log records the reason. An account with
 * a live exception for rule `review-overdue` is left alone. Each suspension is its own
 * transaction that re-reads the account under a row lock, so that two replicas never
 * suspend the same account twice.
 */
export async function checkOverdueReviews(deps: BrokerDeps): Promise<OverdueReviewOutcome> {
  const now = deps.clock.now();
  const log = deps.log.child({ module: "review-check" });
  const outcome: OverdueReviewOutcome = { warned: [], suspended: [], excepted: [] };
  const overdue = (await listOverdueReviews(deps.db, now, deps.config.reviewGraceDays)).filter((item) => item.beyond_grace);

  for (const item of overdue) {
    if (await hasLiveException(deps.db, now, REVIEW_OVERDUE_RULE, { serviceAccountId: item.service_account_id })) {
      outcome.excepted.push(item.service_account_id);
      continue;
    }
    if (deps.config.reviewOverdueAction === "warn") {
      outcome.warned.push(item.service_account_id);
      continue;
    }
    const reason = `access review overdue since ${item.next_review_at}, beyond the grace period of ${deps.config.reviewGraceDays} days`;
    try {
      if (await suspendIfStillOverdue(deps, item.service_account_id, reason)) {
        outcome.suspended.push(item.service_account_id);
      }
    } catch (error) {
      log.error({ err: loggableError(error), serviceAccountId: item.service_account_id }, "suspending an account with an overdue review failed; the next check tries again");
    }
  }

  if (outcome.warned.length > 0) {
    log.warn(
      { count: outcome.warned.length, serviceAccountIds: outcome.warned.slice(0, MAX_IDS_PER_LOG_LINE), graceDays: deps.config.reviewGraceDays },
      "access reviews overdue beyond the grace period; record a review for each account",
    );
  }
  if (outcome.suspended.length > 0) {
    log.warn({ count: outcome.suspended.length, serviceAccountIds: outcome.suspended.slice(0, MAX_IDS_PER_LOG_LINE) }, "suspended accounts with overdue access reviews");
  }
  return outcome;
}

async function suspendIfStillOverdue(deps: BrokerDeps, serviceAccountId: string, reason: string): Promise<boolean> {
  const { result } = await revokingTransaction(deps, CHECK_CONTEXT, async (tx, record) => {
    // Another replica, or a review recorded meanwhile, may have settled the account.
    const account = await findServiceAccount(tx, serviceAccountId, true);
    const graceEnds = (account.lastReviewedAt ?? account.createdAt).getTime() + (account.reviewIntervalDays + deps.config.reviewGraceDays) * DAY_MS;
    if (account.status !== "active" || graceEnds >= deps.clock.now().getTime()) {
      return false;
    }
    await changeServiceAccountStatus(tx, deps.clock, record, serviceAccountId, "suspend", reason, CHECK_CONTEXT.actor);
    return true;
  });
  return result;
}
