import type { Clock } from "../config/clock.js";
import type { Db, Executor, Tx } from "../db/database.js";
import { auditEvents } from "../db/schema.js";
import type { AuditEntry, RequestContext } from "./audit-types.js";

/** Dependencies of an audited transaction: a database and a clock. */
export interface AuditDeps {
  db: Db;
  clock: Clock;
  onAppended?: (count: number) => void;
}

/** Records an audit entry; the entries are chained and written when the work finishes. */
export type RecordAudit = (entry: AuditEntry) => void;

/**
 * Runs `work` in one transaction and inserts the audit entries it records at the end of
 * that same transaction, so that a change and its audit events commit or fail together.
 * The insert takes no shared lock: the chainer links the events after commit (see
 * audit-chainer.ts), so concurrent writers never wait on each other for the chain.
 */
export async function auditedTransaction<T>(
  deps: AuditDeps,
  context: RequestContext,
  work: (tx: Tx, record: RecordAudit) => Promise<T>,
): Promise<T> {
  let appended = 0;
  const result = await deps.db.transaction(async (tx) => {
    const entries: AuditEntry[] = [];
    const value = await work(tx, (entry) => entries.push(entry));
    appended = await appendAuditEvents(tx, deps.clock, context, entries);
    return value;
  });
  if (appended > 0) {
    deps.onAppended?.(appended);
  }
  return result;
}

/** Writes audit entries in their own transaction; for events that record no other change. */
export async function recordAuditEvents(
  deps: AuditDeps,
  context: RequestContext,
  entries: AuditEntry[],
): Promise<void> {
  await auditedTransaction(deps, context, async (_tx, record) => {
    entries.forEach(record);
  });
}

/**
 * Inserts entries as audit events not yet chained, in one statement. Their `seq`,
 * `prev_hash` and `hash` stay null until the chainer links them.
 */
export async function appendAuditEvents(
  tx: Executor,
  clock: Clock,
  context: RequestContext,
  entries: AuditEntry[],
): Promise<number> {
  if (entries.length === 0) {
    return 0;
  }
  const occurredAt = clock.now();
  await tx.insert(auditEvents).values(
    entries.map((entry) => ({
      occurredAt,
      actor: context.actor,
      action: entry.action,
      target: entry.target ?? null,
      outcome: entry.outcome ?? "success",
      requestId: context.requestId,
      sourceAddress: context.sourceAddress,
      details: entry.details ?? {},
    })),
  );
  return entries.length;
}
