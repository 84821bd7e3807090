import type { LineageRecord } from "../lineage/lineage-query.js";

/** The scope of an incident report: the leases of a leaked value, or of one service account, in a window. */
export interface IncidentQuery {
  /** Keyed fingerprint of the leaked value, from POST /v1/fingerprints. */
  fingerprint?: string | undefined;
  serviceAccountId?: string | undefined;
  /** Start of the window; without it, the report reaches back to the first lease. */
  from?: Date | undefined;
  /** End of the window; the report's time when absent. */
  to?: Date | undefined;
}

/** A secret version whose value has the fingerprint looked up. */
export interface MatchedVersion {
  secret_id: string;
  secret_name: string;
  version: string;
  stage: string;
  created_at: string;
}

/** A step taken on an affected secret or credential since the window began. */
export interface IncidentAction {
  at: string;
  /** The audit action that records the same step, so that `audit export --action` finds it. */
  action: "rotation.start" | "lease.revoke";
  target: string;
  actor: string | null;
  detail: string;
}

/**
 * The report of "which credentials were exposed": every credential lease live in the
 * window, who held it, from where, and what was done since, shaped to fill the NIS2
 * Article 23 early warning (24 hours) and notification (72 hours).
 */
export interface IncidentReport {
  generated_at: string;
  query: { fingerprint: string | null; service_account_id: string | null; from: string | null; to: string };
  matched_versions: MatchedVersion[];
  /** Leases live at any moment in the window, ordered by issue time. */
  credentials: LineageRecord[];
  /** True when the window held more leases than the report lists. */
  truncated: boolean;
  affected: {
    service_accounts: { id: string; name: string; technical_owner: string }[];
    applications: { id: string; name: string | null; business_owner: string | null }[];
    secrets: { id: string; name: string | null; versions: string[] }[];
  };
  indicators: { fingerprints: string[]; source_addresses: string[]; subjects: string[] };
  actions_since: IncidentAction[];
  nis2_article_23: {
    affected_systems: string[];
    exposure_window: { first_issued_at: string | null; last_live_at: string | null };
    credentials_live_now: number;
    indicators_of_compromise: string[];
    mitigations_taken: string[];
    to_be_completed_by_the_operator: string[];
  };
  /** Affected secrets that have had no compromise rotation since the window began. */
  secrets_to_rotate: { id: string; name: string | null }[];
  /** Commands that contain the incident: a rotation in compromise mode per secret to rotate. */
  next_steps: string[];
}
