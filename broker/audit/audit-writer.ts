import { sql } from "drizzle-orm";
import type { Clock } from "../config/clock.js";
import { type Db, type Executor, rowsOf, type Tx } from "../db/database.js";
import type { AuditEntry, RequestContext } from "./audit-types.js";
import { canonicalContent } from "./chain.js";

/** Dependencies of an audited transaction: a database and a clock. */
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
 * The chain head is locked only from that final append to the commit, which keeps
 * concurrent writers from waiting on each other for longer than that.
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
 * Chains and inserts entries at the head of the audit log, one statement per entry.
 * Each statement updates the chain head row (which locks it until the caller's
 * transaction ends), computes the event's hash in SQL from the previous hash, and
 * inserts the event: a single round trip, so the lock is held for as short a time as
 * the commit allows. `hashEvent` in chain.ts is the same computation in TypeScript.
 */
export async function appendAuditEvents(
  tx: Executor,
  clock: Clock,
  context: RequestContext,
  entries: AuditEntry[],
): Promise<number> {
  for (const entry of entries) {
    const content = {
      occurredAt: clock.now(),
      actor: context.actor,
      action: entry.action,
      target: entry.target ?? null,
      outcome: entry.outcome ?? "success",
      requestId: context.requestId,
      sourceAddress: context.sourceAddress,
      details: entry.details ?? {},
    };
    const result = await tx.execute(sql`
      with head as (
        update audit_chain_head
        set seq = seq + 1,
            prev_hash = hash,
            hash = encode(sha256(convert_to(hash || chr(10) || (seq + 1)::text || chr(10) || ${canonicalContent(content)}, 'UTF8')), 'hex')
        where id = 1
        returning seq, prev_hash, hash
      )
      insert into audit_events (seq, occurred_at, actor, action, target, outcome, request_id, source_address, details, prev_hash, hash)
      select head.seq, ${content.occurredAt.toISOString()}::timestamptz, ${content.actor}, ${content.action}, ${content.target},
             ${content.outcome}, ${content.requestId}, ${content.sourceAddress}, ${JSON.stringify(content.details)}::jsonb,
             head.prev_hash, head.hash
      from head
      returning seq`);
    if (rowsOf(result).length !== 1) {
      throw new Error("audit_chain_head row is missing: the database was not migrated");
    }
  }
  return entries.length;
}
