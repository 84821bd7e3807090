import { sql } from "drizzle-orm";
import { bigint, jsonb, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import type { RequestContext } from "../../broker/audit/audit-types.js";
import { GENESIS_HASH, hashEvent } from "../../broker/audit/chain.js";
import type { Clock } from "../../broker/config/clock.js";
import type { Db } from "../../broker/db/database.js";
import type { BenchEvent } from "./bench-event.js";

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/**
 * The baseline's table: the columns of audit_events, created with LIKE ... INCLUDING ALL so
 * that it also has the same primary key and indexes, but without the append-only
 * triggers, the chain head or any lock beyond the row insert.
 */
export const baselineEvents = pgTable("bench_baseline_events", {
  seq: bigint("seq", { mode: "number" }).primaryKey(),
  occurredAt: timestamptz("occurred_at").notNull(),
  actor: text("actor").notNull(),
  action: text("action").notNull(),
  target: text("target"),
  outcome: text("outcome").notNull(),
  requestId: text("request_id"),
  sourceAddress: text("source_address"),
  details: jsonb("details").$type<Record<string, unknown>>().notNull(),
  prevHash: text("prev_hash").notNull(),
  hash: text("hash").notNull(),
});

export async function createBaselineTable(db: Db): Promise<void> {
  await db.execute(sql.raw("drop table if exists bench_baseline_events"));
  await db.execute(sql.raw("create table bench_baseline_events (like audit_events including all)"));
}

/**
 * Inserts one event per transaction into the baseline table. Sequence numbers come from a
 * counter in this process, so writers never coordinate through the database. The row
 * carries a real hash of its content over a fixed previous hash, which gives it the same
 * size and the same hashing work as a chained event, with no link to the row before it.
 */
export function createBaselineWriter(db: Db, clock: Clock, context: RequestContext): (event: BenchEvent) => Promise<void> {
  let nextSeq = 1;

  return async function insertBaselineEvent(event: BenchEvent): Promise<void> {
    const content = {
      seq: nextSeq++,
      occurredAt: clock.now(),
      actor: context.actor,
      action: event.action,
      target: event.target,
      outcome: "success",
      requestId: context.requestId,
      sourceAddress: context.sourceAddress,
      details: event.details,
      prevHash: GENESIS_HASH,
    };
    const row = { ...content, hash: hashEvent(content) };

    await db.transaction(async (tx) => {
      await tx.insert(baselineEvents).values(row);
    });
  };
}
