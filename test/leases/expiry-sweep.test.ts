import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../broker/config/config.js";
import { type Database, openDatabase } from "../../broker/db/database.js";
import { startExpirySweep } from "../../broker/leases/expiry-sweep-job.js";
import { EXPIRY_SWEEP_LOCK_KEY, type SweepDeps, sweepExpiredLeases } from "../../broker/leases/expiry-sweep.js";
import { auditEvents, createServiceAccount, lastAuditSeq } from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";

const onPostgres = Boolean(process.env["DATABASE_URL"]);

describe("lease expiry sweep", () => {
  let broker: TestBroker;
  let account: { id: string; application_id: string };
  let leaseSequence = 0;

  beforeAll(async () => {
    broker = await startTestBroker();
    account = await createServiceAccount(broker);
  });

  afterAll(async () => {
    await broker.close();
  });

  afterEach(async () => {
    // Each test starts from a clean slate: no leases, no used assertions, clock back at the start.
    await broker.query("delete from leases");
    await broker.query("delete from used_assertions");
    broker.clock.set(TEST_NOW);
  });

  /**
   * Inserts `count` leases; the n-th (from 1) expires `firstExpiry + (n - 1) * stepSeconds`.
   * Returns their ids in expiry order.
   */
  async function insertLeases(count: number, options: { firstExpiry: Date; stepSeconds?: number; revoked?: boolean }): Promise<string[]> {
    const offset = leaseSequence;
    leaseSequence += count;
    const first = options.firstExpiry.toISOString();
    const step = options.stepSeconds ?? 1;
    await broker.query(`
      insert into leases (id, kind, service_account_id, application_id, scopes, grant_type, issued_at, expires_at, max_expires_at, revoked_at, revoked_by)
      select 'lease_' || lpad(to_hex(${offset} + g), 24, '0'), 'access_token', '${account.id}', '${account.application_id}', '{}',
             'client_credentials', '${first}'::timestamptz - interval '1 hour',
             '${first}'::timestamptz + (g - 1) * interval '${step} seconds',
             '${first}'::timestamptz + interval '1 hour',
             ${options.revoked ? `'${first}'::timestamptz - interval '30 minutes'` : "null"},
             ${options.revoked ? "'test'" : "null"}
      from generate_series(1, ${count}) as g`);
    return Array.from({ length: count }, (_, index) => `lease_${(offset + index + 1).toString(16).padStart(24, "0")}`);
  }

  async function insertUsedAssertions(count: number, expiresAt: Date, prefix: string): Promise<void> {
    await broker.query(`
      insert into used_assertions (issuer, jti, expires_at)
      select '${account.id}', '${prefix}-' || g, '${expiresAt.toISOString()}'::timestamptz
      from generate_series(1, ${count}) as g`);
  }

  async function countLeases(condition: string): Promise<number> {
    const [row] = await broker.query<{ count: number }>(`select count(*)::int as count from leases where ${condition}`);
    return row!.count;
  }

  async function expireEvents(afterSeq: number) {
    const events = await auditEvents(broker, `action=lease.expire&after_seq=${afterSeq}`);
    return events.map((event) => event.details as { count: number; first_lease_id: string; last_lease_id: string; expired_at: string });
  }

  function lastSeq(): Promise<number> {
    return lastAuditSeq(broker);
  }

  function metricValue(text: string, name: string): number {
    const line = text.split("\n").find((candidate) => candidate.startsWith(`${name} `));
    return Number(line?.split(" ")[1]);
  }

  const now = new Date(TEST_NOW);
  const minutes = (count: number) => count * 60_000;

  it("drains backlog over several batches", async () => {
    // 1,200 expired leases, the last one expiring exactly now; live and revoked ones beside them.
    const expired = await insertLeases(1200, { firstExpiry: new Date(now.getTime() - 1199_000) });
    await insertLeases(50, { firstExpiry: new Date(now.getTime() + minutes(10)) });
    await insertLeases(20, { firstExpiry: new Date(now.getTime() - minutes(90)), revoked: true });
    const seq = await lastSeq();
    const expiredBefore = await metricValue(await broker.deps.metrics.registry.metrics(), "broker_leases_expired_total");

    const first = await sweepExpiredLeases(broker.deps, { batchSize: 500, maxBatches: 2 });
    const second = await sweepExpiredLeases(broker.deps, { batchSize: 500, maxBatches: 2 });
    const third = await sweepExpiredLeases(broker.deps, { batchSize: 500, maxBatches: 2 });

    expect(first).toEqual({ claimed: true, batches: 2, leasesExpired: 1000, assertionsPurged: 0, drained: false });
    expect(second).toEqual({ claimed: true, batches: 1, leasesExpired: 200, assertionsPurged: 0, drained: true });
    expect(third).toEqual({ claimed: true, batches: 1, leasesExpired: 0, assertionsPurged: 0, drained: true });
    expect(await countLeases(`expired_at = '${TEST_NOW}'::timestamptz`)).toBe(1200);
    expect(await countLeases("expired_at is null and revoked_at is null")).toBe(50);
    expect(await countLeases("expired_at is null and revoked_at is not null")).toBe(20);

    const events = await expireEvents(seq);
    expect(events.map((event) => event.count)).toEqual([500, 500, 200]);
    expect(events.map((event) => [event.first_lease_id, event.last_lease_id])).toEqual([
      [expired[0], expired[499]],
      [expired[500], expired[999]],
      [expired[1000], expired[1199]],
    ]);
    expect(events[0]!.expired_at).toBe(TEST_NOW);

    const metrics = await broker.deps.metrics.registry.metrics();
    expect(metricValue(metrics, "broker_leases_expired_total") - expiredBefore).toBe(1200);
    expect(metricValue(metrics, "broker_leases_live")).toBe(50);
    expect((await broker.request("GET", "/v1/audit/verify")).json).toMatchObject({ valid: true });
  });

  it("leaves live leases untouched", async () => {
    const live = await insertLeases(30, { firstExpiry: new Date(now.getTime() + 1000) });
    const before = await broker.query(`select * from leases order by id`);

    const result = await sweepExpiredLeases(broker.deps);

    expect(result.leasesExpired).toBe(0);
    expect(await broker.query(`select * from leases order by id`)).toEqual(before);
    expect(live).toHaveLength(30);
  });

  it("expires leases once the clock passes them", async () => {
    await insertLeases(10, { firstExpiry: new Date(now.getTime() + minutes(1)), stepSeconds: 60 });

    broker.clock.advance(minutes(5));
    const result = await sweepExpiredLeases(broker.deps);

    expect(result.leasesExpired).toBe(5);
    expect(await countLeases("expired_at is not null")).toBe(5);
    const listed = await broker.request("GET", `/v1/leases?service_account_id=${account.id}&status=active`, { token: broker.tokens.auditor });
    expect(listed.json.items).toHaveLength(5);
  });

  it("purges expired used assertions in batches", async () => {
    await insertUsedAssertions(700, new Date(now.getTime() - minutes(1)), "old");
    await insertUsedAssertions(3, new Date(now.getTime() + minutes(1)), "fresh");
    await insertUsedAssertions(1, now, "edge");

    const result = await sweepExpiredLeases(broker.deps, { batchSize: 500 });

    expect(result).toMatchObject({ batches: 2, assertionsPurged: 700, leasesExpired: 0, drained: true });
    const remaining = await broker.query<{ jti: string }>("select jti from used_assertions order by jti");
    expect(remaining.map((row) => row.jti)).toEqual(["edge-1", "fresh-1", "fresh-2", "fresh-3"]);
  });

  it("default run clears 16,000 ids", async () => {
    await insertUsedAssertions(16_000, new Date(now.getTime() - minutes(1)), "burst");

    const result = await sweepExpiredLeases(broker.deps, { pauseMs: 0 });

    expect(result).toMatchObject({ assertionsPurged: 16_000, drained: true });
    expect(await broker.query("select jti from used_assertions where jti like 'burst-%' limit 1")).toEqual([]);
  });

  it("writes no audit event for an empty run", async () => {
    const seq = await lastSeq();

    await sweepExpiredLeases(broker.deps);

    expect(await lastSeq()).toBe(seq);
  });

  describe.runIf(onPostgres)("on PostgreSQL with several replicas", () => {
    let client: postgres.Sql;
    let replica: SweepDeps;
    let closeReplica: () => Promise<void>;

    beforeAll(async () => {
      const url = (broker.database as Database & { url?: string }).url!;
      client = postgres(url, { max: 2, onnotice: () => undefined });
      const database = await openDatabase({ databaseUrl: url });
      replica = { ...broker.deps, db: database.db };
      closeReplica = () => database.close();
    });

    afterAll(async () => {
      await client.end();
      await closeReplica();
    });

    it("skips the run while another replica holds the lock", async () => {
      await insertLeases(5, { firstExpiry: new Date(now.getTime() - minutes(1)) });
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let locked!: () => void;
      const lockTaken = new Promise<void>((resolve) => (locked = resolve));
      const holder = client.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(${EXPIRY_SWEEP_LOCK_KEY.toString()}::bigint)`;
        locked();
        await released;
      });
      await lockTaken;

      const skipped = await sweepExpiredLeases(broker.deps);
      release();
      await holder;
      const swept = await sweepExpiredLeases(broker.deps);

      expect(skipped).toEqual({ claimed: false, batches: 0, leasesExpired: 0, assertionsPurged: 0, drained: false });
      expect(swept).toMatchObject({ claimed: true, leasesExpired: 5 });
    });

    it("skips a lease locked by a request in flight", async () => {
      const [busy, ...others] = await insertLeases(4, { firstExpiry: new Date(now.getTime() - minutes(1)) });
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let locked!: () => void;
      const rowLocked = new Promise<void>((resolve) => (locked = resolve));
      const holder = client.begin(async (tx) => {
        await tx`select id from leases where id = ${busy!} for update`;
        locked();
        await released;
      });
      await rowLocked;

      const during = await sweepExpiredLeases(broker.deps);
      release();
      await holder;
      const after = await sweepExpiredLeases(broker.deps);

      expect(during.leasesExpired).toBe(others.length);
      expect(after.leasesExpired).toBe(1);
      expect(await countLeases(`id = '${busy}' and expired_at is not null`)).toBe(1);
    });

    it("two concurrent sweeps never double-mark", async () => {
      const total = 3000;
      await insertLeases(total, { firstExpiry: new Date(now.getTime() - minutes(60)) });
      const seq = await lastSeq();
      const options = { batchSize: 100, maxBatches: 4 };

      const results = [];
      for (let round = 0; round < 40 && (await countLeases("expired_at is null")) > 0; round += 1) {
        results.push(...(await Promise.all([sweepExpiredLeases(broker.deps, options), sweepExpiredLeases(replica, options)])));
      }

      const reported = results.reduce((sum, result) => sum + result.leasesExpired, 0);
      const events = await expireEvents(seq);
      const audited = events.reduce((sum, event) => sum + event.count, 0);
      expect(reported).toBe(total);
      expect(audited).toBe(total);
      expect(await countLeases("expired_at is not null")).toBe(total);
      expect((await broker.request("GET", "/v1/audit/verify")).json).toMatchObject({ valid: true });
    });
  });
});

describe("lease expiry sweep job", () => {
  let broker: TestBroker;
  let account: { id: string; application_id: string };

  beforeAll(async () => {
    broker = await startTestBroker();
    account = await createServiceAccount(broker);
  });

  afterAll(async () => {
    await broker.close();
  });

  async function insertExpiredLeases(count: number): Promise<void> {
    await broker.query(`
      insert into leases (id, kind, service_account_id, application_id, scopes, grant_type, issued_at, expires_at, max_expires_at)
      select 'lease_' || lpad(to_hex(g), 24, 'f'), 'access_token', '${account.id}', '${account.application_id}', '{}',
             'client_credentials', '${TEST_NOW}'::timestamptz - interval '2 hours',
             '${TEST_NOW}'::timestamptz - interval '1 hour' + g * interval '1 second',
             '${TEST_NOW}'::timestamptz
      from generate_series(1, ${count}) as g`);
  }

  async function expiredCount(): Promise<number> {
    const [row] = await broker.query<{ count: number }>("select count(*)::int as count from leases where expired_at is not null");
    return row!.count;
  }

  it("rejects an invalid schedule", () => {
    const deps = { ...broker.deps, config: { ...broker.deps.config, sweepSchedule: "every minute" } };

    expect(() => startExpirySweep(deps)).toThrow(/BROKER_SWEEP_SCHEDULE 'every minute' is not a valid cron expression/);
  });

  it.each(["every minute", "61 * * * * *", "* * *"])("configuration rejects schedule '%s'", (schedule) => {
    expect(() => loadConfig({ BROKER_SWEEP_SCHEDULE: schedule })).toThrow(ConfigError);
    expect(() => loadConfig({ BROKER_SWEEP_SCHEDULE: schedule })).toThrow(/BROKER_SWEEP_SCHEDULE/);
  });

  it("configuration accepts the default schedule", () => {
    expect(loadConfig({}).sweepSchedule).toBe("*/15 * * * * *");
  });

  it("stop waits for the sweep in flight", async () => {
    await insertExpiredLeases(3);
    // A schedule that never fires during the test: runs start only through runNow().
    const deps = { ...broker.deps, config: { ...broker.deps.config, sweepSchedule: "0 0 0 1 1 *" } };
    const job = startExpirySweep(deps, { batchSize: 1 });

    // An open transaction that locks the audit log against inserts holds up the sweep's
    // first batch: PGlite runs one transaction at a time, PostgreSQL makes the audit
    // insert wait for the lock.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const auditLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = broker.database.db.transaction(async (tx) => {
      await tx.execute(sql`lock table audit_events in share mode`);
      locked();
      await released;
    });
    await auditLocked;

    const run = job.runNow();
    let stopped = false;
    const stopping = job.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);

    release();
    await holder;
    await stopping;
    await run;
    expect(stopped).toBe(true);
    // The batch in flight committed; the stop kept the run from starting the next two.
    expect(await expiredCount()).toBe(1);

    await job.runNow();
    expect(await expiredCount()).toBe(1);
    expect(broker.logs.join("")).toContain("lease expiry sweep stopped");
  });

  it("logs a failed batch with its lease ids", async () => {
    await broker.query("delete from leases");
    await insertExpiredLeases(2);
    // The clock throws when the audit append reads the event time, so the batch fails after its update.
    let calls = 0;
    const clock = {
      now: () => {
        calls += 1;
        if (calls > 1) {
          throw new Error("clock unavailable");
        }
        return new Date(TEST_NOW);
      },
    };
    const deps = { ...broker.deps, clock, config: { ...broker.deps.config, sweepSchedule: "0 0 0 1 1 *" } };
    const job = startExpirySweep(deps);

    await job.runNow();
    await job.stop();

    const line = broker.logs.map((text) => JSON.parse(text) as Record<string, unknown>).find((entry) => entry["msg"]?.toString().startsWith("lease expiry sweep batch failed"));
    expect(line).toMatchObject({ level: 50, batch: 1, firstLeaseId: "lease_fffffffffffffffffffffff1", lastLeaseId: "lease_fffffffffffffffffffffff2" });
    expect(await expiredCount()).toBe(0);
  });
});
