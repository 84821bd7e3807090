import { asc, eq, isNull, sql } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { auditChainHead, auditEvents } from "../db/schema.js";
import type { Logger } from "../logging/logger.js";
import { loggableError } from "../logging/logger.js";
import { hashEvent } from "./chain.js";

/** Events linked per transaction, so that one pass locks the chain head only briefly. */
export const CHAIN_BATCH_SIZE = 500;

/**
 * Links committed audit events that are not chained yet, in `id` order, up to `limit` of
 * them, in one transaction, and returns how many it linked. It locks the chain head row
 * first, so chainers of several broker processes take turns and never give two events
 * one sequence number. Request transactions never touch that row.
 */
export async function chainPendingEvents(db: Db, limit = CHAIN_BATCH_SIZE): Promise<number> {
  return db.transaction(async (tx) => {
    const [head] = await tx.select().from(auditChainHead).where(eq(auditChainHead.id, 1)).for("update");
    if (!head) {
      throw new Error("audit_chain_head row is missing: the database was not migrated");
    }
    const pending = await tx.select().from(auditEvents).where(isNull(auditEvents.seq)).orderBy(asc(auditEvents.id)).limit(limit);
    if (pending.length === 0) {
      return 0;
    }
    let seq = head.seq;
    let prevHash = head.hash;
    const links = pending.map((event) => {
      seq += 1;
      const hash = hashEvent({ ...event, seq, prevHash });
      const link = { id: event.id, seq, prev_hash: prevHash, hash };
      prevHash = hash;
      return link;
    });
    await tx.execute(sql`
      update audit_events as e
      set seq = l.seq, prev_hash = l.prev_hash, hash = l.hash
      from jsonb_to_recordset(${JSON.stringify(links)}::jsonb) as l(id bigint, seq bigint, prev_hash text, hash text)
      where e.id = l.id`);
    await tx.update(auditChainHead).set({ seq, hash: prevHash }).where(eq(auditChainHead.id, 1));
    return links.length;
  });
}

/** Links every event pending when it is called, batch by batch. */
export async function chainAllPendingEvents(db: Db): Promise<void> {
  while ((await chainPendingEvents(db)) === CHAIN_BATCH_SIZE) {
    // A full batch: more events may be waiting.
  }
}

export interface AuditChainerOptions {
  db: Db;
  log: Logger;
  /** How often the chainer looks for events that no wake-up announced, such as other processes' events. */
  intervalMs?: number;
  /** How long a wake-up waits before its pass, so that one pass links the events of several commits. */
  batchDelayMs?: number;
}

interface FlushWaiter {
  /** The first pass that starts after the flush was asked for. */
  pass: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Runs `chainPendingEvents` in the background of one broker process: right after this
 * process commits audit events (`wake`), and every `intervalMs` for events that other
 * processes committed. Readers that must see every committed event chained call `flush`.
 */
export class AuditChainer {
  private readonly db: Db;
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly batchDelayMs: number;
  private delayed: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private passesStarted = 0;
  private waiters: FlushWaiter[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(options: AuditChainerOptions) {
    this.db = options.db;
    this.log = options.log;
    this.intervalMs = options.intervalMs ?? 1000;
    this.batchDelayMs = options.batchDelayMs ?? 10;
  }

  /** Starts the periodic pass. */
  start(): void {
    this.timer ??= setInterval(() => this.wake(), this.intervalMs);
    this.timer.unref();
  }

  /**
   * Starts a pass after the batch delay, or one more after the pass in flight. Without the
   * delay, one writer at a time would cost a chaining transaction per event. A failed
   * pass is logged, and the next one retries.
   */
  wake(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.delayed ??= setTimeout(() => this.startPass(), this.batchDelayMs);
  }

  /**
   * Waits for a pass that starts after this call, so every event committed before the
   * call is chained, and rejects when that pass fails. It does not wait for the chainer
   * to go idle, because under steady load it may never be.
   */
  flush(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ pass: this.passesStarted + 1, resolve, reject });
      this.startPass();
    });
  }

  /** Stops the periodic pass and chains what is pending, before the database closes. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Starts a pass now, or one more after the pass in flight. */
  private startPass(): void {
    clearTimeout(this.delayed);
    this.delayed = undefined;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.passes();
  }

  private async passes(): Promise<void> {
    try {
      do {
        this.again = false;
        const pass = ++this.passesStarted;
        try {
          await chainAllPendingEvents(this.db);
          this.settle(pass, undefined);
        } catch (error) {
          this.log.error({ err: loggableError(error) }, "failed to chain audit events, the next pass tries again");
          this.settle(pass, error);
        }
      } while (this.again);
    } finally {
      this.running = false;
    }
  }

  private settle(pass: number, error: unknown): void {
    const done = this.waiters.filter((waiter) => waiter.pass <= pass);
    this.waiters = this.waiters.filter((waiter) => waiter.pass > pass);
    for (const waiter of done) {
      if (error === undefined) {
        waiter.resolve();
      } else {
        waiter.reject(error);
      }
    }
  }
}
