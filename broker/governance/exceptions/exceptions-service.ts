import { and, asc, eq, gt, isNotNull, isNull, lte, type SQL, sql } from "drizzle-orm";
import type { RecordAudit } from "../../audit/audit-writer.js";
import type { Executor } from "../../db/database.js";
import { newId } from "../../db/ids.js";
import { policyExceptions, secrets, serviceAccounts } from "../../db/schema.js";
import { Conflict, InvalidState, NotFound, ValidationFailed } from "../../errors.js";
import {
  type ExceptionCreateInput,
  type ExceptionFilterInput,
  type ExceptionStatus,
  MAX_EXCEPTION_DAYS,
  type PolicyExceptionView,
} from "./exception-schemas.js";

export type PolicyExceptionRow = typeof policyExceptions.$inferSelect;

/** The record an exception covers: one service account or one secret. */
export type ExceptionSubject = { serviceAccountId: string } | { secretId: string };

const DAY_MS = 24 * 60 * 60 * 1000;

/** Records an accepted exception to a policy rule for one account or secret. */
export async function createException(
  tx: Executor,
  now: Date,
  record: RecordAudit,
  input: ExceptionCreateInput,
  actor: string,
): Promise<PolicyExceptionView> {
  const acceptedAt = input.accepted_at ? new Date(input.accepted_at) : now;
  const expiresAt = new Date(input.expires_at);
  checkTimes(acceptedAt, expiresAt, now);
  await checkSubjectExists(tx, input);
  const subject: ExceptionSubject = input.service_account_id ? { serviceAccountId: input.service_account_id } : { secretId: input.secret_id! };
  const [live] = await liveExceptionsFor(tx, now, input.control, subject);
  if (live) {
    throw new Conflict(`live exception ${live.id} already covers ${input.control} for this record until ${live.expiresAt.toISOString()}; revoke it first`);
  }

  const [row] = await tx
    .insert(policyExceptions)
    .values({
      id: newId("exc"),
      control: input.control,
      serviceAccountId: input.service_account_id ?? null,
      secretId: input.secret_id ?? null,
      reason: input.reason,
      compensatingControls: input.compensating_controls,
      acceptedBy: input.accepted_by,
      acceptedAt,
      expiresAt,
      createdAt: now,
      createdBy: actor,
    })
    .returning();
  record({
    action: "exception.create",
    target: row!.id,
    details: {
      control: row!.control,
      service_account_id: row!.serviceAccountId,
      secret_id: row!.secretId,
      accepted_by: row!.acceptedBy,
      accepted_at: acceptedAt.toISOString(),
      expires_at: expiresAt.toISOString(),
    },
  });
  return toExceptionView(row!, now);
}

function checkTimes(acceptedAt: Date, expiresAt: Date, now: Date): void {
  if (acceptedAt > now) {
    throw new ValidationFailed([{ name: "accepted_at", reason: `must not be in the future (now is ${now.toISOString()})` }]);
  }
  if (expiresAt <= now) {
    throw new ValidationFailed([{ name: "expires_at", reason: `must be in the future (now is ${now.toISOString()})` }]);
  }
  const latest = new Date(now.getTime() + MAX_EXCEPTION_DAYS * DAY_MS);
  if (expiresAt > latest) {
    throw new ValidationFailed([
      { name: "expires_at", reason: `must be at most ${MAX_EXCEPTION_DAYS} days ahead (no later than ${latest.toISOString()}); renew the exception when it ends` },
    ]);
  }
}

async function checkSubjectExists(tx: Executor, input: ExceptionCreateInput): Promise<void> {
  if (input.service_account_id) {
    const [account] = await tx.select({ id: serviceAccounts.id }).from(serviceAccounts).where(eq(serviceAccounts.id, input.service_account_id));
    if (!account) {
      throw new ValidationFailed([{ name: "service_account_id", reason: `service account ${input.service_account_id} does not exist` }]);
    }
    return;
  }
  const [secret] = await tx
    .select({ id: secrets.id })
    .from(secrets)
    .where(and(eq(secrets.id, input.secret_id!), isNull(secrets.deletedAt)));
  if (!secret) {
    throw new ValidationFailed([{ name: "secret_id", reason: `secret ${input.secret_id} does not exist or is deleted` }]);
  }
}

export async function findException(db: Executor, id: string, forUpdate = false): Promise<PolicyExceptionRow> {
  const query = db.select().from(policyExceptions).where(eq(policyExceptions.id, id));
  const [row] = forUpdate ? await query.for("update") : await query;
  if (!row) {
    throw new NotFound("exception", id);
  }
  return row;
}

export async function readException(db: Executor, now: Date, id: string): Promise<PolicyExceptionView> {
  return toExceptionView(await findException(db, id), now);
}

/** Page position for `listExceptions`: the id of the last exception of the previous page, and the page size. */
export interface ExceptionPage {
  cursor?: string | undefined;
  limit?: number | undefined;
}

/** Lists exceptions ordered by id, with their status at `now`. */
export async function listExceptions(db: Executor, now: Date, filter: ExceptionFilterInput, page: ExceptionPage = {}): Promise<PolicyExceptionView[]> {
  const conditions: (SQL | undefined)[] = [page.cursor ? gt(policyExceptions.id, page.cursor) : undefined];
  if (filter.status) conditions.push(statusCondition(filter.status, now));
  if (filter.control) conditions.push(eq(policyExceptions.control, filter.control));
  if (filter.service_account_id) conditions.push(eq(policyExceptions.serviceAccountId, filter.service_account_id));
  if (filter.secret_id) conditions.push(eq(policyExceptions.secretId, filter.secret_id));

  const query = db.select().from(policyExceptions).where(and(...conditions)).orderBy(asc(policyExceptions.id));
  const rows = page.limit === undefined ? await query : await query.limit(page.limit);
  return rows.map((row) => toExceptionView(row, now));
}

function statusCondition(status: ExceptionStatus, now: Date): SQL | undefined {
  const at = sql`${now.toISOString()}::timestamptz`;
  if (status === "revoked") return isNotNull(policyExceptions.revokedAt);
  if (status === "expired") return and(isNull(policyExceptions.revokedAt), lte(policyExceptions.expiresAt, at));
  return and(isNull(policyExceptions.revokedAt), gt(policyExceptions.expiresAt, at));
}

/** Reads the live exceptions at `now` for one control and record. There is at most one unless two were created concurrently. */
async function liveExceptionsFor(db: Executor, now: Date, control: string, subject: ExceptionSubject): Promise<PolicyExceptionRow[]> {
  const subjectCondition =
    "serviceAccountId" in subject ? eq(policyExceptions.serviceAccountId, subject.serviceAccountId) : eq(policyExceptions.secretId, subject.secretId);
  return db
    .select()
    .from(policyExceptions)
    .where(and(eq(policyExceptions.control, control), subjectCondition, statusCondition("live", now)));
}

/** Returns whether a live exception at `now` covers `control` for the record. */
export async function hasLiveException(db: Executor, now: Date, control: string, subject: ExceptionSubject): Promise<boolean> {
  return (await liveExceptionsFor(db, now, control, subject)).length > 0;
}

/** Ends an exception before its expiry, so that the finding it suppressed is reported again. */
export async function revokeException(
  tx: Executor,
  now: Date,
  record: RecordAudit,
  id: string,
  actor: string,
  reason: string | undefined,
): Promise<PolicyExceptionView> {
  const current = await findException(tx, id, true);
  if (current.revokedAt) {
    throw new InvalidState(`exception ${id} was already revoked at ${current.revokedAt.toISOString()}`);
  }
  const [row] = await tx
    .update(policyExceptions)
    .set({ revokedAt: now, revokedBy: actor, revokeReason: reason ?? null })
    .where(eq(policyExceptions.id, id))
    .returning();
  record({ action: "exception.revoke", target: id, details: { control: row!.control, reason: reason ?? null } });
  return toExceptionView(row!, now);
}

export function exceptionStatus(row: PolicyExceptionRow, now: Date): ExceptionStatus {
  if (row.revokedAt) return "revoked";
  return row.expiresAt <= now ? "expired" : "live";
}

export function toExceptionView(row: PolicyExceptionRow, now: Date): PolicyExceptionView {
  return {
    id: row.id,
    control: row.control,
    service_account_id: row.serviceAccountId,
    secret_id: row.secretId,
    reason: row.reason,
    compensating_controls: row.compensatingControls,
    accepted_by: row.acceptedBy,
    accepted_at: row.acceptedAt.toISOString(),
    expires_at: row.expiresAt.toISOString(),
    status: exceptionStatus(row, now),
    created_at: row.createdAt.toISOString(),
    created_by: row.createdBy,
    revoked_at: row.revokedAt?.toISOString() ?? null,
    revoked_by: row.revokedBy,
    revoke_reason: row.revokeReason,
  };
}
