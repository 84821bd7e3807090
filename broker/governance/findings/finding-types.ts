import type { BrokerConfig } from "../../config/config.js";
import type { Executor } from "../../db/database.js";
import type { ControlReference } from "./controls.js";
import type { RuleId } from "./rule-ids.js";

export type Severity = "low" | "medium" | "high" | "critical";

/** A register record that a finding names. */
export interface FindingRecord {
  type: "service_account" | "application" | "secret" | "grant" | "federated_subject";
  id: string;
}

/** The record an exception must cover to suppress a finding: a service account or a secret. */
export interface FindingSubject {
  type: "service_account" | "secret";
  id: string;
}

/** One policy violation, computed from the data at the time of the request. */
export interface Finding {
  /** `fnd_<rule>_<record id>`: the same violation keeps the same id from one request to the next. */
  id: string;
  rule: RuleId;
  severity: Severity;
  subject: FindingSubject;
  records: FindingRecord[];
  /** Description of the violation and of the fix. It contains ids and names, never a secret value. */
  message: string;
  controls: ControlReference[];
  /** Whether a live exception for the rule and the subject suppresses the finding. */
  suppressed: boolean;
  exception_id: string | null;
}

/** A finding as a rule reports it, before the id, controls and suppression are added. */
export interface RuleMatch {
  /** The record the finding is about, which makes its id unique within the rule. */
  recordId: string;
  severity: Severity;
  subject: FindingSubject;
  records: FindingRecord[];
  message: string;
}

/** Thresholds of the rules, from the broker's configuration. */
export type FindingSettings = Pick<BrokerConfig, "privilegedTokenTtlCap" | "unusedAccountDays" | "reviewGraceDays">;

/** Inputs of a rule: the database, the thresholds and the time of evaluation. */
export interface RuleContext {
  db: Executor;
  settings: FindingSettings;
  now: Date;
}

export interface FindingRule {
  id: RuleId;
  evaluate(context: RuleContext): Promise<RuleMatch[]>;
}
