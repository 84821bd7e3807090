import { eq, sql } from "drizzle-orm";
import type { Clock } from "../config/clock.js";
import { type Db, type Executor, rowsOf, type Tx } from "../db/database.js";
import { auditChainHead, auditEvents } from "../db/schema.js";
import type { AuditEntry, RequestContext } from "./audit-types.js";
import { hashEvent } from "./chain.js";

/** What an audited transaction needs: a database and a clock. */
export interface AuditDeps {
  db: Db;
  clock: Clock;
  onAppended?: (count: number) => void;
}

/** Records an audit entry; the entries are chained and written when the work finishes. */
export type RecordAudit = (entry: AuditEntry) => void;

/**
 * Runs `work` in one transaction and appends the audit entries it records at the end of
 * that same transaction, so that a change and its audit events commit or fail together.
 * The chain head is locked only for that final append, which keeps concurrent writers
 * from waiting on each other for longer than the append and the commit.
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

/** Chains and inserts entries at the head of the audit log; the caller's transaction holds the head lock until commit. */
export async function appendAuditEvents(
  tx: Executor,
  clock: Clock,
  context: RequestContext,
  entries: AuditEntry[],
): Promise<number> {
  if (entries.length === 0) {
    return 0;
  }

  const locked = await tx.execute(sql`select seq, hash from audit_chain_head where id = 1 for update`);
  const head = rowsOf<{ seq: string | number; hash: string }>(locked)[0];
  if (!head) {
    throw new Error("audit_chain_head row is missing: the database was not migrated");
  }

  let seq = Number(head.seq);
  let prevHash = head.hash;
  const rows: (typeof auditEvents.$inferInsert)[] = [];
  for (const entry of entries) {
    seq += 1;
    const content = {
      seq,
      occurredAt: clock.now(),
      actor: context.actor,
      action: entry.action,
      target: entry.target ?? null,
      outcome: entry.outcome ?? "success",
      requestId: context.requestId,
      sourceAddress: context.sourceAddress,
      details: entry.details ?? {},
      prevHash,
    };
    const hash = hashEvent(content);
    rows.push({ ...content, hash });
    prevHash = hash;
  }

  await tx.insert(auditEvents).values(rows);
  await tx.update(auditChainHead).set({ seq, hash: prevHash }).where(eq(auditChainHead.id, 1));
  return rows.length;
}
