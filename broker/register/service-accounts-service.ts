import { and, asc, eq, gt, lt, type SQL, sql } from "drizzle-orm";
import type { RecordAudit } from "../audit/audit-writer.js";
import type { Clock } from "../config/clock.js";
import type { Executor } from "../db/database.js";
import { newId } from "../db/ids.js";
import { type SupplierBlock, serviceAccounts } from "../db/schema.js";
import { Conflict, InvalidState, NotFound, ValidationFailed } from "../errors.js";
import { capLeasesAtAccountExpiry } from "../leases/lease-service.js";
import { revokeLeases } from "../leases/lease-revocation.js";
import { findApplication } from "./applications-service.js";
import type {
  ServiceAccountCreateInput,
  ServiceAccountFilterInput,
  ServiceAccountUpdateInput,
  ServiceAccountView,
} from "./register-schemas.js";

export type ServiceAccountRow = typeof serviceAccounts.$inferSelect;

const DAY_MS = 24 * 60 * 60 * 1000;

/** When the next review is due: the last review (or creation) plus the interval. */
function nextReviewAt(row: ServiceAccountRow): Date {
  const base = row.lastReviewedAt ?? row.createdAt;
  return new Date(base.getTime() + row.reviewIntervalDays * DAY_MS);
}

/** SQL twin of `nextReviewAt`, for filtering. */
export const nextReviewSql = sql`coalesce(${serviceAccounts.lastReviewedAt}, ${serviceAccounts.createdAt}) + make_interval(days => ${serviceAccounts.reviewIntervalDays})`;

export async function createServiceAccount(
  tx: Executor,
  clock: Clock,
  record: RecordAudit,
  input: ServiceAccountCreateInput,
): Promise<ServiceAccountView> {
  const now = clock.now();
  checkExpiryInFuture(input.expires_at, now);
  checkSupplierBlock(input.kind, input.supplier);
  if (input.last_reviewed_at && new Date(input.last_reviewed_at) > now) {
    throw new ValidationFailed([{ name: "last_reviewed_at", reason: "must not be in the future" }]);
  }
  await findApplication(tx, input.application_id).catch(() => {
    throw new ValidationFailed([
      { name: "application_id", reason: `application ${input.application_id} does not exist; create it first` },
    ]);
  });
  await ensureAccountNameFree(tx, input.name);

  const [row] = await tx
    .insert(serviceAccounts)
    .values({
      id: newId("sa"),
      name: input.name,
      applicationId: input.application_id,
      technicalOwner: input.technical_owner,
      kind: input.kind,
      privileged: input.privileged,
      status: "active",
      expiresAt: new Date(input.expires_at),
      reviewIntervalDays: input.review_interval_days,
      lastReviewedAt: input.last_reviewed_at ? new Date(input.last_reviewed_at) : null,
      maxTokenTtl: input.max_token_ttl,
      allowedAudiences: input.allowed_audiences,
      allowedScopes: input.allowed_scopes,
      supplier: input.supplier ?? null,
      createdAt: now,
      updatedAt: now,
    })
    .returning();

  record({
    action: "service_account.create",
    target: row!.id,
    details: { name: row!.name, application_id: row!.applicationId, kind: row!.kind, privileged: row!.privileged },
  });
  return toServiceAccountView(row!, now);
}

export async function findServiceAccount(db: Executor, id: string, forUpdate = false): Promise<ServiceAccountRow> {
  const query = db.select().from(serviceAccounts).where(eq(serviceAccounts.id, id));
  const [row] = forUpdate ? await query.for("update") : await query;
  if (!row) {
    throw new NotFound("service account", id);
  }
  return row;
}

export async function listServiceAccounts(
  db: Executor,
  clock: Clock,
  filter: ServiceAccountFilterInput,
  cursor: string | undefined,
  limit: number,
): Promise<ServiceAccountView[]> {
  const now = clock.now();
  const conditions: (SQL | undefined)[] = [cursor ? gt(serviceAccounts.id, cursor) : undefined];
  if (filter.application_id) conditions.push(eq(serviceAccounts.applicationId, filter.application_id));
  if (filter.owner) conditions.push(eq(serviceAccounts.technicalOwner, filter.owner));
  if (filter.kind) conditions.push(eq(serviceAccounts.kind, filter.kind));
  if (filter.status) conditions.push(eq(serviceAccounts.status, filter.status));
  if (filter.expiring_before) conditions.push(lt(serviceAccounts.expiresAt, new Date(filter.expiring_before)));
  if (filter.review_overdue !== undefined) {
    conditions.push(filter.review_overdue ? sql`${nextReviewSql} < ${now.toISOString()}::timestamptz` : sql`${nextReviewSql} >= ${now.toISOString()}::timestamptz`);
  }

  const rows = await db
    .select()
    .from(serviceAccounts)
    .where(and(...conditions))
    .orderBy(asc(serviceAccounts.id))
    .limit(limit);
  return rows.map((row) => toServiceAccountView(row, now));
}

export async function updateServiceAccount(
  tx: Executor,
  clock: Clock,
  record: RecordAudit,
  id: string,
  input: ServiceAccountUpdateInput,
): Promise<ServiceAccountView> {
  const now = clock.now();
  const current = await findServiceAccount(tx, id, true);
  if (current.status === "decommissioned") {
    throw new InvalidState(`service account ${id} is decommissioned and can no longer change`);
  }
  if (input.expires_at) {
    checkExpiryInFuture(input.expires_at, now);
  }
  const kind = input.kind ?? current.kind;
  const supplier = input.supplier === undefined ? current.supplier : input.supplier;
  checkSupplierBlock(kind, supplier ?? undefined);

  const [row] = await tx
    .update(serviceAccounts)
    .set({
      technicalOwner: input.technical_owner,
      expiresAt: input.expires_at ? new Date(input.expires_at) : undefined,
      kind: input.kind,
      privileged: input.privileged,
      reviewIntervalDays: input.review_interval_days,
      maxTokenTtl: input.max_token_ttl,
      allowedAudiences: input.allowed_audiences,
      allowedScopes: input.allowed_scopes,
      supplier: input.supplier,
      updatedAt: now,
    })
    .where(eq(serviceAccounts.id, id))
    .returning();

  record({ action: "service_account.update", target: id, details: { fields: Object.keys(input).sort() } });
  if (input.expires_at) {
    await capLeasesAtAccountExpiry(tx, id, new Date(input.expires_at));
  }
  return toServiceAccountView(row!, now);
}

const STATUS_TRANSITIONS = {
  suspend: { from: ["active"], to: "suspended" },
  activate: { from: ["suspended"], to: "active" },
  decommission: { from: ["active", "suspended"], to: "decommissioned" },
} as const;

export type StatusChange = keyof typeof STATUS_TRANSITIONS;

/**
 * Suspends, re-activates or decommissions an account. Decommissioning is final.
 * Suspending or decommissioning revokes every live lease of the account in the same
 * transaction.
 */
export async function changeServiceAccountStatus(
  tx: Executor,
  clock: Clock,
  record: RecordAudit,
  id: string,
  change: StatusChange,
  reason: string | undefined,
  actor: string,
): Promise<ServiceAccountView> {
  const now = clock.now();
  const transition = STATUS_TRANSITIONS[change];
  const current = await findServiceAccount(tx, id, true);
  if (!(transition.from as readonly string[]).includes(current.status)) {
    throw new InvalidState(`service account ${id} is ${current.status}; ${change} needs one of: ${transition.from.join(", ")}`);
  }
  if (change === "activate" && current.expiresAt <= now) {
    throw new InvalidState(`service account ${id} expired at ${current.expiresAt.toISOString()}; extend expires_at before activating it`);
  }

  const [row] = await tx
    .update(serviceAccounts)
    .set({ status: transition.to, statusReason: reason ?? null, updatedAt: now })
    .where(eq(serviceAccounts.id, id))
    .returning();

  record({
    action: `service_account.${change}`,
    target: id,
    details: { from_status: current.status, to_status: transition.to, reason: reason ?? null },
  });
  if (transition.to !== "active") {
    await revokeLeases(tx, now, record, { serviceAccountId: id }, actor, `service account ${change}: ${reason ?? "no reason given"}`);
  }
  return toServiceAccountView(row!, now);
}

function checkExpiryInFuture(expiresAt: string, now: Date): void {
  if (new Date(expiresAt) <= now) {
    throw new ValidationFailed([{ name: "expires_at", reason: `must be in the future (now is ${now.toISOString()})` }]);
  }
}

function checkSupplierBlock(kind: string, supplier: SupplierBlock | undefined | null): void {
  if (kind === "supplier" && !supplier) {
    throw new ValidationFailed([
      { name: "supplier", reason: "is required for kind supplier: give name, contract_ref, approved_by and approved_at" },
    ]);
  }
  if (kind !== "supplier" && supplier) {
    throw new ValidationFailed([{ name: "supplier", reason: `is only allowed for kind supplier, not ${kind}` }]);
  }
}

async function ensureAccountNameFree(tx: Executor, name: string): Promise<void> {
  const [existing] = await tx.select({ id: serviceAccounts.id }).from(serviceAccounts).where(eq(serviceAccounts.name, name));
  if (existing) {
    throw new Conflict(`a service account named '${name}' already exists (${existing.id}); choose another name`);
  }
}

export function toServiceAccountView(row: ServiceAccountRow, now: Date): ServiceAccountView {
  const nextReview = nextReviewAt(row);
  return {
    id: row.id,
    name: row.name,
    application_id: row.applicationId,
    technical_owner: row.technicalOwner,
    kind: row.kind as ServiceAccountView["kind"],
    privileged: row.privileged,
    status: row.status as ServiceAccountView["status"],
    status_reason: row.statusReason,
    expires_at: row.expiresAt.toISOString(),
    review_interval_days: row.reviewIntervalDays,
    last_reviewed_at: row.lastReviewedAt?.toISOString() ?? null,
    next_review_at: nextReview.toISOString(),
    review_overdue: nextReview < now,
    max_token_ttl: row.maxTokenTtl,
    allowed_audiences: row.allowedAudiences,
    allowed_scopes: row.allowedScopes,
    supplier: row.supplier,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}
