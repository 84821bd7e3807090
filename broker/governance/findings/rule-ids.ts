/**
 * Ids of the policy rules that findings report. An exception names one of these as its
 * control. The ids are part of each finding's stable id, so they never change.
 */
export const RULE_IDS = [
  "account-owner-missing",
  "account-expired-active",
  "review-overdue",
  "privileged-token-ttl",
  "secret-rotation-overdue",
  "supplier-grant-unbounded",
  "account-unused",
  "account-reuse",
  "grant-approval-missing",
] as const;

export type RuleId = (typeof RULE_IDS)[number];
