import { and, asc, eq, gt, gte, lt, type SQL } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { auditEvents } from "../db/schema.js";

export interface AuditFilter {
  from?: Date | undefined;
  to?: Date | undefined;
  actor?: string | undefined;
  action?: string | undefined;
  target?: string | undefined;
  outcome?: string | undefined;
  afterSeq?: number | undefined;
  limit?: number | undefined;
}

/** Audit event as exported: snake_case, RFC 3339 times, hashes included for offline checks. */
export interface AuditEventView {
  seq: number;
  occurred_at: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  request_id: string | null;
  source_address: string | null;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

/** Rows fetched per query while streaming; keeps memory flat for any export size. */
const STREAM_PAGE_SIZE = 1000;

/**
 * Yields matching chained audit events in sequence order, page by page. Events not yet
 * chained are left out: flush the chainer first to include every committed event.
 */
export async function* streamAuditEvents(db: Db, filter: AuditFilter): AsyncGenerator<AuditEventView> {
  let afterSeq = filter.afterSeq ?? 0;
  let remaining = filter.limit ?? Number.POSITIVE_INFINITY;

  while (remaining > 0) {
    const pageSize = Math.min(STREAM_PAGE_SIZE, remaining);
    const rows = await db
      .select()
      .from(auditEvents)
      .where(and(gt(auditEvents.seq, afterSeq), ...conditionsFor(filter)))
      .orderBy(asc(auditEvents.seq))
      .limit(pageSize);

    const views = rows.map(toView);
    yield* views;
    if (views.length < pageSize) {
      return;
    }
    afterSeq = views[views.length - 1]!.seq;
    remaining -= rows.length;
  }
}

function conditionsFor(filter: AuditFilter): SQL[] {
  const conditions: SQL[] = [];
  if (filter.from) conditions.push(gte(auditEvents.occurredAt, filter.from));
  if (filter.to) conditions.push(lt(auditEvents.occurredAt, filter.to));
  if (filter.actor) conditions.push(eq(auditEvents.actor, filter.actor));
  if (filter.action) conditions.push(eq(auditEvents.action, filter.action));
  if (filter.target) conditions.push(eq(auditEvents.target, filter.target));
  if (filter.outcome) conditions.push(eq(auditEvents.outcome, filter.outcome));
  return conditions;
}

function toView(row: typeof auditEvents.$inferSelect): AuditEventView {
  if (row.seq === null || row.prevHash === null || row.hash === null) {
    throw new Error(`audit event ${row.id} is not chained yet`);
  }
  return {
    seq: row.seq,
    occurred_at: row.occurredAt.toISOString(),
    actor: row.actor,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    request_id: row.requestId,
    source_address: row.sourceAddress,
    details: row.details,
    prev_hash: row.prevHash,
    hash: row.hash,
  };
}
