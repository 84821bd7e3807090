import { and, inArray, isNull, sql } from "drizzle-orm";
import type { Executor } from "../db/database.js";
import { grants, leases, secrets, serviceAccounts } from "../db/schema.js";
import type { AuditSegment } from "./audit-segment.js";
import { combinedStatus, type ControlStatus, FRAMEWORK_CONTROLS, type ProductControl } from "./control-catalogue.js";

/** Maximum max token TTL of a privileged account, in seconds. */
export const PRIVILEGED_TTL_CAP_SECONDS = 900;
const DAY_MS = 86_400_000;

/** Facts gathered while writing the files, for the controls that depend on them. */
export interface ExportFacts {
  lineageRows: number;
  authEvents: number;
  segment: AuditSegment;
  segmentProblem: string | undefined;
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

async function productControls(db: Executor, now: Date, facts: ExportFacts): Promise<ProductControl[]> {
  const accounts = await db.select().from(serviceAccounts);
  const active = accounts.filter((account) => account.status === "active");
  const expiredActive = active.filter((account) => account.expiresAt < now).length;
  const reviewOverdue = active.filter((account) => (account.lastReviewedAt ?? account.createdAt).getTime() + account.reviewIntervalDays * DAY_MS < now.getTime()).length;
  const privilegedOverCap = active.filter((account) => account.privileged && account.maxTokenTtl > PRIVILEGED_TTL_CAP_SECONDS).length;
  const suppliers = accounts.filter((account) => account.supplier !== null);
  const inactiveIds = accounts.filter((account) => account.status !== "active").map((account) => account.id);
  const inactiveLive = inactiveIds.length === 0 ? 0 : await liveLeaseCount(db, now, inactiveIds);
  const supplierOpenGrants = suppliers.length === 0 ? 0 : await openGrantCount(db, suppliers.map((account) => account.id));
  const rotation = await rotationCounts(db, now);

  return [
    control("short-lived-issuance", "Short-lived issuance", privilegedOverCap === 0, { leases_in_window: facts.lineageRows, privileged_accounts_over_ttl_cap: privilegedOverCap },
      `every credential is a lease; privileged accounts should have a max token TTL of at most ${PRIVILEGED_TTL_CAP_SECONDS} s`, ["lineage.csv", "privileged-accounts.csv"]),
    control("rotation-max-age", "Rotation with max age", rotation.pastMaxAge === 0, { secrets: rotation.total, secrets_with_max_age: rotation.withMaxAge, secrets_past_max_age: rotation.pastMaxAge },
      "no secret with a max age is older than it", ["rotations.csv"]),
    control("revocation-on-offboarding", "Revocation on offboarding", inactiveLive === 0, { suspended_or_decommissioned_accounts: inactiveIds.length, their_live_leases: inactiveLive },
      "suspended and decommissioned accounts hold no live lease", ["service-accounts.csv", "lineage.csv"]),
    control("owner-and-review", "Owner and review per service account", expiredActive === 0 && reviewOverdue === 0,
      { active_accounts: active.length, active_past_expiry: expiredActive, review_overdue: reviewOverdue, privileged_accounts: accounts.filter((account) => account.privileged).length },
      "every active account is within its expiry and its review interval", ["service-accounts.csv", "privileged-accounts.csv"]),
    control("supplier-time-bound-access", "Supplier time-bound access", supplierOpenGrants === 0, { supplier_accounts: suppliers.length, supplier_grants_without_not_after: supplierOpenGrants },
      "every live supplier grant has an end date", ["supplier-access.csv", "grants.csv"]),
    { id: "exception-register", title: "Exception register with expiry", status: "not_assessed", counts: {}, basis: "the exceptions register is not part of this pack yet", evidence: [] },
    control("tamper-evident-audit-log", "Tamper-evident audit log", facts.segmentProblem === undefined, { audit_events_in_window: facts.segment.events, auth_events_in_window: facts.authEvents },
      facts.segmentProblem ?? "the audit events of the window form an unbroken hash chain", ["audit-chain.ndjson", "auth-events.csv"]),
    { id: "operator-mfa", title: "MFA evidence for operator actions", status: "not_satisfied", counts: {}, basis: "operators authenticate with bearer tokens; the broker records no second factor", evidence: [] },
    control("lineage-export", "Lineage export", true, { leases_in_window: facts.lineageRows }, "the lineage of every lease live in the window is included", ["lineage.csv"]),
  ];
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

async function openGrantCount(db: Executor, accountIds: string[]): Promise<number> {
  const [row] = await db
    .select({ count: sql<number>`count(*)::int` })
    .from(grants)
    .where(and(inArray(grants.serviceAccountId, accountIds), isNull(grants.revokedAt), isNull(grants.notAfter)));
  return Number(row?.count ?? 0);
}

async function rotationCounts(db: Executor, now: Date): Promise<{ total: number; withMaxAge: number; pastMaxAge: number }> {
  const rows = await db.select({ rotation: secrets.rotation, lastRotatedAt: secrets.lastRotatedAt, createdAt: secrets.createdAt }).from(secrets).where(isNull(secrets.deletedAt));
  const withMaxAge = rows.filter((row) => row.rotation?.max_age !== undefined);
  const pastMaxAge = withMaxAge.filter((row) => (row.lastRotatedAt ?? row.createdAt).getTime() + row.rotation!.max_age! * 1000 < now.getTime());
  return { total: rows.length, withMaxAge: withMaxAge.length, pastMaxAge: pastMaxAge.length };
}

