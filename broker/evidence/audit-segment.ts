import { and, gte, lt, max, min } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { auditEvents } from "../db/schema.js";
import type { AuditEventView } from "../audit/audit-query.js";
import { GENESIS_HASH, hashEvent } from "../audit/chain.js";
import type { EvidenceWindow } from "./evidence-tables.js";

/** The part of the audit chain a pack includes: contiguous sequence numbers, with the hashes at both ends. */
export interface AuditSegment {
  first_seq: number | null;
  last_seq: number | null;
  /** The hash the first event points back to: the link to the part of the chain before the window. */
  first_prev_hash: string;
  last_hash: string;
  events: number;
}

/** Actions that record an authentication or an authorization decision. */
const AUTH_ACTIONS = new Set(["auth.authenticate", "auth.authorize", "token.issue", "credential.issue", "operator_token.create", "operator_token.revoke"]);

export function isAuthEvent(event: AuditEventView): boolean {
  return AUTH_ACTIONS.has(event.action) || event.outcome === "denied";
}

/**
 * Sequence range of the events that occurred in the window. Events are ordered by
 * sequence number, and their times almost follow it, so the segment runs from the first
 * event at or after `from` to the last before `to`, with every event between.
 */
export async function segmentRange(db: Db, window: EvidenceWindow): Promise<{ first: number; last: number } | undefined> {
  const [range] = await db
    .select({ first: min(auditEvents.seq), last: max(auditEvents.seq) })
    .from(auditEvents)
    .where(and(window.from ? gte(auditEvents.occurredAt, window.from) : undefined, lt(auditEvents.occurredAt, window.to)));
  if (!range || range.first === null || range.last === null) {
    return undefined;
  }
  return { first: Number(range.first), last: Number(range.last) };
}

/** Checks one event against its predecessor in a segment; returns the reason it fails, or undefined. */
export function checkLink(event: AuditEventView, previous: AuditEventView | undefined): string | undefined {
  if (previous !== undefined && event.seq !== previous.seq + 1) {
    return `sequence ${event.seq} follows ${previous.seq}: events are missing`;
  }
  if (previous !== undefined && event.prev_hash !== previous.hash) {
    return `event ${event.seq} does not point back to event ${previous.seq}`;
  }
  const expected = hashEvent({
    seq: event.seq,
    prevHash: event.prev_hash,
    occurredAt: new Date(event.occurred_at),
    actor: event.actor,
    action: event.action,
    target: event.target,
    outcome: event.outcome,
    requestId: event.request_id,
    sourceAddress: event.source_address,
    details: event.details,
  });
  return expected === event.hash ? undefined : `event ${event.seq} was altered: its hash does not match its content`;
}

export const EMPTY_SEGMENT: AuditSegment = { first_seq: null, last_seq: null, first_prev_hash: GENESIS_HASH, last_hash: GENESIS_HASH, events: 0 };

