import type { Executor } from "../../db/database.js";
import { listExceptions } from "../exceptions/exceptions-service.js";
import { RULE_CONTROLS } from "./controls.js";
import type { Finding, FindingRule, FindingSettings, RuleMatch } from "./finding-types.js";
import { accountExpiredActive } from "./rules/account-expired-active.js";
import { accountOwnerMissing } from "./rules/account-owner-missing.js";
import { accountReuse } from "./rules/account-reuse.js";
import { accountUnused } from "./rules/account-unused.js";
import { grantApprovalMissing } from "./rules/grant-approval-missing.js";
import { privilegedTokenTtl } from "./rules/privileged-token-ttl.js";
import { reviewOverdue } from "./rules/review-overdue.js";
import { secretRotationOverdue } from "./rules/secret-rotation-overdue.js";
import { supplierGrantUnbounded } from "./rules/supplier-grant-unbounded.js";

/** Every rule, in the order findings are reported. */
export const FINDING_RULES: readonly FindingRule[] = [
  accountOwnerMissing,
  accountExpiredActive,
  reviewOverdue,
  privilegedTokenTtl,
  secretRotationOverdue,
  supplierGrantUnbounded,
  accountUnused,
  accountReuse,
  grantApprovalMissing,
];

/** Dependencies of `computeFindings`: the database and the rule thresholds of the broker's configuration. */
export interface FindingDeps {
  db: Executor;
  config: FindingSettings;
}

/**
 * Evaluates every rule against the data as it is at `now`, and marks each finding that a
 * live exception (same rule as its control, same account or secret) suppresses. Returns
 * suppressed findings too, ordered by rule and then by id.
 */
export async function computeFindings(deps: FindingDeps, now: Date): Promise<Finding[]> {
  const exceptions = await listExceptions(deps.db, now, { status: "live" });
  const suppressing = new Map(exceptions.map((exception) => [`${exception.control} ${exception.service_account_id ?? exception.secret_id}`, exception.id]));
  const context = { db: deps.db, settings: deps.config, now };

  const findings: Finding[] = [];
  for (const rule of FINDING_RULES) {
    const matches = await rule.evaluate(context);
    const sorted = matches.map((match) => toFinding(rule, match, suppressing)).sort((a, b) => a.id.localeCompare(b.id));
    findings.push(...sorted);
  }
  return findings;
}

function toFinding(rule: FindingRule, match: RuleMatch, suppressing: Map<string, string>): Finding {
  const exceptionId = suppressing.get(`${rule.id} ${match.subject.id}`) ?? null;
  return {
    id: `fnd_${rule.id}_${match.recordId}`,
    rule: rule.id,
    severity: match.severity,
    subject: match.subject,
    records: match.records,
    message: match.message,
    controls: [...RULE_CONTROLS[rule.id]],
    suppressed: exceptionId !== null,
    exception_id: exceptionId,
  };
}
