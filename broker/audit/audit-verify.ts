import { asc, count, gt, isNull } from "drizzle-orm";
import type { Db, Executor } from "../db/database.js";
import { auditChainHead, auditEvents } from "../db/schema.js";
import { GENESIS_HASH, hashEvent } from "./chain.js";

type WalkResult =
  | { valid: true; events: number }
  | { valid: false; events: number; first_invalid_seq: number; reason: string };

/** The walk's result, with the number of committed events that wait for the chainer (unprotected until chained). */
export type VerifyResult = WalkResult & { pending: number };

/** Rows read per round trip while walking the chain. */
const VERIFY_BATCH_SIZE = 2000;

/**
 * Walks the audit chain in sequence order and reports the first event that was altered,
 * removed or moved: a gap in the sequence, a `prev_hash` that does not match the event
 * before it, a hash that does not match the content, or a log that ends before or after
 * the event the chain head records.
 */
export async function verifyAuditChain(db: Db): Promise<VerifyResult> {
  // One snapshot for the rows and the head: events appended while the walk runs are then
  // neither seen nor reported as missing.
  return db.transaction(async (tx) => ({ ...(await walkChain(tx)), pending: await countPending(tx) }), {
    isolationLevel: "repeatable read",
    accessMode: "read only",
  });
}

async function countPending(db: Executor): Promise<number> {
  const [row] = await db.select({ pending: count() }).from(auditEvents).where(isNull(auditEvents.seq));
  return row?.pending ?? 0;
}

async function walkChain(db: Executor): Promise<WalkResult> {
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let checked = 0;

  for (;;) {
    const batch = await db
      .select()
      .from(auditEvents)
      .where(gt(auditEvents.seq, expectedSeq - 1))
      .orderBy(asc(auditEvents.seq))
      .limit(VERIFY_BATCH_SIZE);

    for (const row of batch) {
      if (row.seq !== expectedSeq) {
        return invalid(checked, expectedSeq, `event ${expectedSeq} is missing: the next event found is ${row.seq}`);
      }
      if (row.prevHash !== prevHash) {
        return invalid(checked, row.seq, `prev_hash of event ${row.seq} does not match the hash of event ${row.seq - 1}`);
      }
      if (hashEvent({ ...row, seq: expectedSeq, prevHash }) !== row.hash) {
        return invalid(checked, row.seq, `content of event ${row.seq} does not match its hash`);
      }
      prevHash = row.hash!;
      expectedSeq += 1;
      checked += 1;
    }

    if (batch.length < VERIFY_BATCH_SIZE) {
      break;
    }
  }

  const [head] = await db.select().from(auditChainHead);
  if (head && head.seq > checked) {
    return invalid(checked, checked + 1, `event ${checked + 1} is missing: the chain head records event ${head.seq} but the log ends at event ${checked}`);
  }
  if (head && head.seq < checked) {
    return invalid(checked, head.seq + 1, `event ${head.seq + 1} was not appended by the broker: the chain head records event ${head.seq} as the last`);
  }
  if (head && head.hash !== prevHash) {
    return invalid(checked, checked, `hash of event ${checked} does not match the hash the chain head records for it`);
  }
  return { valid: true, events: checked };
}

function invalid(events: number, seq: number, reason: string): WalkResult {
  return { valid: false, events, first_invalid_seq: seq, reason };
}
