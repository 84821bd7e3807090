import pino from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AuditChainer, chainPendingEvents } from "../../broker/audit/audit-chainer.js";
import { appendAuditEvents, auditedTransaction } from "../../broker/audit/audit-writer.js";
import { verifyAuditChain } from "../../broker/audit/audit-verify.js";
import { type Database, openDatabase, rowsOf } from "../../broker/db/database.js";
import { sql } from "drizzle-orm";
import { ManualClock } from "../../broker/config/clock.js";
import { openTestDatabase } from "../support/test-database.js";
import { TEST_NOW } from "../support/test-broker.js";

const SYSTEM = { actor: "system", role: null, requestId: null, sourceAddress: null };
const silent = pino({ level: "silent" });

describe("audit chainer", () => {
  let database: Database & { url: string | undefined };
  const clock = new ManualClock(TEST_NOW);

  beforeAll(async () => {
    database = await openTestDatabase();
  });

  afterAll(async () => {
    await database.close();
  });

  beforeEach(async () => {
    await new AuditChainer({ db: database.db, log: silent }).flush();
  });

  async function append(actions: string[]): Promise<void> {
    await auditedTransaction({ db: database.db, clock }, SYSTEM, async (_tx, record) => {
      actions.forEach((action) => record({ action, details: { n: 1 } }));
    });
  }

  async function pendingCount(): Promise<number> {
    const [row] = rowsOf<{ count: number }>(await database.db.execute(sql`select count(*)::int as count from audit_events where seq is null`));
    return row!.count;
  }

  async function chainedActions(): Promise<string[]> {
    const rows = rowsOf<{ action: string }>(await database.db.execute(sql`select action from audit_events where seq is not null order by seq`));
    return rows.map((row) => row.action);
  }

  it("writes events unchained in the transaction", async () => {
    await append(["test.one"]);

    expect(await pendingCount()).toBe(1);
  });

  it("verify counts events not chained yet", async () => {
    await append(["test.one", "test.two"]);

    const result = await verifyAuditChain(database.db);

    expect(result).toMatchObject({ valid: true, pending: 2 });
  });

  it("chains pending events in insertion order", async () => {
    await append(["test.first", "test.second"]);
    await append(["test.third"]);

    const linked = await chainPendingEvents(database.db);

    expect(linked).toBe(3);
    expect((await chainedActions()).slice(-3)).toEqual(["test.first", "test.second", "test.third"]);
    expect(await verifyAuditChain(database.db)).toMatchObject({ valid: true, pending: 0 });
  });

  it("chains in batches of at most the limit", async () => {
    await append(["test.a", "test.b", "test.c"]);

    expect(await chainPendingEvents(database.db, 2)).toBe(2);
    expect(await pendingCount()).toBe(1);
    expect(await chainPendingEvents(database.db, 2)).toBe(1);
    expect(await chainPendingEvents(database.db, 2)).toBe(0);
  });

  it("rolled-back change leaves no event and no gap", async () => {
    await expect(
      auditedTransaction({ db: database.db, clock }, SYSTEM, async (_tx, record) => {
        record({ action: "test.rolled_back" });
        throw new Error("work failed");
      }),
    ).rejects.toThrow("work failed");
    await append(["test.after"]);

    await chainPendingEvents(database.db);

    expect(await chainedActions()).not.toContain("test.rolled_back");
    expect(await verifyAuditChain(database.db)).toMatchObject({ valid: true, pending: 0 });
  });

  it("flush chains every event committed before it", async () => {
    const chainer = new AuditChainer({ db: database.db, log: silent });
    await append(["test.flushed"]);

    await chainer.flush();

    expect(await pendingCount()).toBe(0);
  });

  it("flush resolves under steady load", async () => {
    const chainer = new AuditChainer({ db: database.db, log: silent });
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await append(["test.load"]);
        chainer.wake();
      }
    })();

    await append(["test.marker"]);
    await chainer.flush();
    writing = false;
    await writer;

    expect(await chainedActions()).toContain("test.marker");
  });

  it("wake chains in the background", async () => {
    const chainer = new AuditChainer({ db: database.db, log: silent });
    await append(["test.woken"]);

    chainer.wake();
    await chainer.flush();

    expect(await chainedActions()).toContain("test.woken");
  });

  it("trigger allows setting the chain columns once", async () => {
    await append(["test.trigger"]);
    await chainPendingEvents(database.db);
    const [event] = rowsOf<{ id: number }>(await database.db.execute(sql`select id from audit_events where action = 'test.trigger'`));

    await expect(database.db.execute(sql`update audit_events set seq = seq + 100000 where id = ${event!.id}`)).rejects.toThrow();
    await expect(database.db.execute(sql`update audit_events set hash = 'x' where id = ${event!.id}`)).rejects.toThrow();
  });

  it("trigger refuses content changes of a pending event", async () => {
    await append(["test.pending_content"]);

    await expect(
      database.db.execute(sql`update audit_events set action = 'test.forged', seq = 999999, prev_hash = 'a', hash = 'b' where action = 'test.pending_content'`),
    ).rejects.toThrow();
    await expect(database.db.execute(sql`update audit_events set action = 'test.forged' where action = 'test.pending_content'`)).rejects.toThrow();
    await expect(database.db.execute(sql`delete from audit_events where action = 'test.pending_content'`)).rejects.toThrow();
  });

  it("failed pass rejects flush, then retries", async () => {
    const lines: string[] = [];
    const log = pino({ level: "error" }, { write: (line: string) => lines.push(line) });
    const chainer = new AuditChainer({ db: database.db, log });
    await append(["test.retried"]);
    await database.db.execute(sql`alter table audit_chain_head rename to audit_chain_head_hidden`);

    await expect(chainer.flush()).rejects.toThrow();
    await database.db.execute(sql`alter table audit_chain_head_hidden rename to audit_chain_head`);
    await chainer.flush();

    expect(lines.join("")).toContain("failed to chain audit events");
    expect(await chainedActions()).toContain("test.retried");
  });

  it("unused append writes nothing", async () => {
    const before = await pendingCount();

    expect(await appendAuditEvents(database.db, clock, SYSTEM, [])).toBe(0);
    expect(await pendingCount()).toBe(before);
  });
});

describe.runIf(process.env["DATABASE_URL"])("audit chainer on PostgreSQL", () => {
  let database: Database & { url: string | undefined };
  let other: Database;
  const clock = new ManualClock(TEST_NOW);

  beforeAll(async () => {
    database = await openTestDatabase();
    other = await openDatabase({ databaseUrl: database.url });
  });

  afterAll(async () => {
    await other.close();
    await database.close();
  });

  it("two chainers build one chain", async () => {
    const chainers = [new AuditChainer({ db: database.db, log: silent }), new AuditChainer({ db: other.db, log: silent })];
    const writers = Array.from({ length: 16 }, (_, writer) =>
      (async () => {
        for (let event = 0; event < 25; event += 1) {
          const db = writer % 2 === 0 ? database.db : other.db;
          await auditedTransaction({ db, clock }, SYSTEM, async (_tx, record) => record({ action: "test.concurrent", details: { writer, event } }));
          chainers[writer % 2]!.wake();
        }
      })(),
    );

    await Promise.all(writers);
    await Promise.all(chainers.map((chainer) => chainer.flush()));

    const result = await verifyAuditChain(database.db);
    expect(result).toMatchObject({ valid: true, pending: 0 });
    const [row] = rowsOf<{ count: number; distinct_seq: number }>(
      await database.db.execute(sql`select count(*)::int as count, count(distinct seq)::int as distinct_seq from audit_events where action = 'test.concurrent'`),
    );
    expect(row).toEqual({ count: 400, distinct_seq: 400 });
  });

  it("writers ignore a locked chain head", async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const headLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = other.db.transaction(async (tx) => {
      await tx.execute(sql`select seq from audit_chain_head where id = 1 for update`);
      locked();
      await released;
    });
    await headLocked;

    await auditedTransaction({ db: database.db, clock }, SYSTEM, async (_tx, record) => record({ action: "test.not_blocked" }));
    release();
    await holder;

    const [row] = rowsOf<{ count: number }>(await database.db.execute(sql`select count(*)::int as count from audit_events where action = 'test.not_blocked'`));
    expect(row!.count).toBe(1);
  });
});
