import { and, eq, inArray, isNotNull, isNull, sql } from "drizzle-orm";
import type { Executor } from "../db/database.js";
import { leases, secrets, serviceAccounts } from "../db/schema.js";
import { listExceptions } from "../governance/exceptions/exceptions-service.js";
import type { Finding } from "../governance/findings/finding-types.js";
import type { RuleId } from "../governance/findings/rule-ids.js";
import type { AuditSegment } from "./audit-segment.js";
import { combinedStatus, type ControlStatus, FRAMEWORK_CONTROLS, type ProductControl } from "./control-catalogue.js";

/** Facts gathered while writing the files, for the controls that depend on them. */
export interface ExportFacts {
  lineageRows: number;
  authEvents: number;
  segment: AuditSegment;
  segmentProblem: string | undefined;
  /** Policy findings at export time, suppressed ones included. */
  findings: Finding[];
}

/** A framework control with its computed status and the counts behind it. */
export interface ControlReport {
  framework: string;
  id: string;
  title: string;
  status: ControlStatus;
  product_controls: ProductControl[];
}

/** Computes the product controls from the register as it is at `now`, and the framework controls from them. */
export async function assessControls(db: Executor, now: Date, facts: ExportFacts): Promise<ControlReport[]> {
  const product = await productControls(db, now, facts);
  const byId = new Map(product.map((control) => [control.id, control]));
  return FRAMEWORK_CONTROLS.map((control) => {
    const implemented = control.product_controls.map((id) => byId.get(id)!);
    return { framework: control.framework, id: control.id, title: control.title, status: combinedStatus(implemented.map((entry) => entry.status)), product_controls: implemented };
  });
}

/**
 * Product controls from the policy findings: a control is met when none of its rules has
 * an open finding. A finding that a live exception suppresses counts as accepted risk.
 */
async function productControls(db: Executor, now: Date, facts: ExportFacts): Promise<ProductControl[]> {
  const count = findingCounter(facts.findings);
  const accounts = await db.select({ id: serviceAccounts.id, status: serviceAccounts.status, privileged: serviceAccounts.privileged }).from(serviceAccounts);
  const inactiveIds = accounts.filter((account) => account.status !== "active").map((account) => account.id);
  const inactiveLive = inactiveIds.length === 0 ? 0 : await liveLeaseCount(db, now, inactiveIds);
  const exceptions = await listExceptions(db, now, {});
  const rotationPolicies = await rotationPolicyCounts(db);

  return [
    fromRules("short-lived-issuance", "Short-lived issuance", count, ["privileged-token-ttl"], { leases_in_window: facts.lineageRows },
      "every credential is a lease, and no privileged account may hold tokens longer than the privileged cap", ["lineage.csv", "privileged-accounts.csv", "findings.csv"]),
    fromRules("rotation-max-age", "Rotation with max age", count, ["secret-rotation-overdue"], rotationPolicies,
      "every static secret has a rotation policy (or is rotated by its upstream), and none is older than its policy's max age", ["rotations.csv", "findings.csv"],
      rotationPolicies.static_secrets_without_rotation_policy === 0),
    fromRules("revocation-on-offboarding", "Revocation on offboarding", count, ["account-unused"], { suspended_or_decommissioned_accounts: inactiveIds.length, their_live_leases: inactiveLive },
      "suspended and decommissioned accounts hold no live lease, and no active account went unused past the threshold", ["service-accounts.csv", "lineage.csv", "findings.csv"], inactiveLive === 0),
    fromRules("owner-and-review", "Owner and review per service account", count, ["account-owner-missing", "account-expired-active", "review-overdue", "account-reuse", "grant-approval-missing"],
      { active_accounts: accounts.length - inactiveIds.length, privileged_accounts: accounts.filter((account) => account.privileged).length },
      "every active account has owners, is within its expiry and review interval, serves one workload, and every grant names its approver and justification",
      ["service-accounts.csv", "privileged-accounts.csv", "reviews.csv", "grants.csv", "findings.csv"]),
    fromRules("supplier-time-bound-access", "Supplier time-bound access", count, ["supplier-grant-unbounded"], { supplier_accounts: await supplierCount(db) },
      "every supplier grant ends, and not after the supplier's contract", ["supplier-access.csv", "grants.csv", "findings.csv"]),
    control("exception-register", "Exception register with expiry", true,
      { live_exceptions: exceptions.filter((entry) => entry.status === "live").length, expired_exceptions: exceptions.filter((entry) => entry.status === "expired").length, suppressed_findings: count.suppressed() },
      "every accepted risk is recorded with its reason, compensating controls, who accepted it and an expiry", ["exceptions.csv", "findings.csv"]),
    control("tamper-evident-audit-log", "Tamper-evident audit log", facts.segmentProblem === undefined, { audit_events_in_window: facts.segment.events, auth_events_in_window: facts.authEvents },
      facts.segmentProblem ?? "the audit events of the window form an unbroken hash chain", ["audit-chain.ndjson", "auth-events.csv"]),
    { id: "operator-mfa", title: "MFA evidence for operator actions", status: "not_satisfied", counts: {}, basis: "operators authenticate with bearer tokens; the broker records no second factor", evidence: [] },
    control("lineage-export", "Lineage export", true, { leases_in_window: facts.lineageRows }, "the lineage of every lease live in the window is included", ["lineage.csv"]),
  ];
}

/** Counts open and suppressed findings per rule. */
function findingCounter(findings: Finding[]) {
  return {
    open: (rule: RuleId) => findings.filter((finding) => finding.rule === rule && !finding.suppressed).length,
    accepted: (rule: RuleId) => findings.filter((finding) => finding.rule === rule && finding.suppressed).length,
    suppressed: () => findings.filter((finding) => finding.suppressed).length,
  };
}

/** Builds a product control that is met when its rules have no open finding and `alsoMet` is true. */
function fromRules(
  id: string,
  title: string,
  count: ReturnType<typeof findingCounter>,
  rules: RuleId[],
  counts: Record<string, number>,
  basis: string,
  evidence: string[],
  alsoMet = true,
): ProductControl {
  const ruleCounts: Record<string, number> = {};
  for (const rule of rules) {
    ruleCounts[`${rule}_open`] = count.open(rule);
    ruleCounts[`${rule}_accepted`] = count.accepted(rule);
  }
  const open = rules.reduce((sum, rule) => sum + count.open(rule), 0);
  return control(id, title, open === 0 && alsoMet, { ...counts, ...ruleCounts }, basis, evidence);
}

/** Static secrets, and those with neither a rotation policy nor rotation by their upstream (an AWS Lambda). */
async function rotationPolicyCounts(db: Executor): Promise<{ static_secrets: number; static_secrets_without_rotation_policy: number }> {
  const [row] = await db
    .select({
      total: sql<number>`count(*)::int`,
      withoutPolicy: sql<number>`count(*) filter (where ${secrets.rotation} is null and ${secrets.externalRotation} is null)::int`,
    })
    .from(secrets)
    .where(and(isNull(secrets.deletedAt), eq(secrets.kind, "static")));
  return { static_secrets: Number(row?.total ?? 0), static_secrets_without_rotation_policy: Number(row?.withoutPolicy ?? 0) };
}

async function supplierCount(db: Executor): Promise<number> {
  const [row] = await db.select({ count: sql<number>`count(*)::int` }).from(serviceAccounts).where(isNotNull(serviceAccounts.supplier));
  return Number(row?.count ?? 0);
}

function control(id: string, title: string, met: boolean, counts: Record<string, number>, basis: string, evidence: string[]): ProductControl {
  return { id, title, status: met ? "satisfied" : "not_satisfied", counts, basis, evidence };
}

async function liveLeaseCount(db: Executor, now: Date, accountIds: string[]): Promise<number> {
  const [row] = await db
    .select({ count: sql<number>`count(*)::int` })
    .from(leases)
    .where(and(inArray(leases.serviceAccountId, accountIds), isNull(leases.revokedAt), sql`${leases.expiresAt} > ${now.toISOString()}::timestamptz`));
  return Number(row?.count ?? 0);
}
