import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../broker/config/clock.js";
import { DataKeyRing } from "../../broker/crypto/data-key-ring.js";
import { type Database, openDatabase, rowsOf } from "../../broker/db/database.js";
import { sql } from "drizzle-orm";
import { environmentRing, randomKeys } from "../support/master-key-fixtures.js";
import { TEST_NOW } from "../support/test-broker.js";
import { openTestDatabase } from "../support/test-database.js";

const RINGS = 4;

describe("data key creation race", () => {
  let database: Database & { url: string | undefined };
  /** One connection per ring on PostgreSQL, as separate replicas have; PGlite serves one client. */
  let connections: Database[];

  beforeEach(async () => {
    database = await openTestDatabase();
    connections = [];
    for (let index = 0; index < RINGS; index += 1) {
      connections.push(database.url ? await openDatabase({ databaseUrl: database.url }) : database);
    }
  });

  afterEach(async () => {
    for (const connection of connections) {
      if (connection !== database) {
        await connection.close();
      }
    }
    await database.close();
  });

  function rings(): DataKeyRing[] {
    const [masterKey] = randomKeys(1);
    const clock = new ManualClock(TEST_NOW);
    return connections.map((connection) => new DataKeyRing({ db: connection.db, clock, masterKeys: environmentRing(masterKey!), log: pino({ level: "silent" }) }));
  }

  async function activeKeys(purpose: string): Promise<{ id: string }[]> {
    return rowsOf(await database.db.execute(sql`select id from data_keys where purpose = ${purpose} and status = 'active'`));
  }

  it("ends with one active value key", async () => {
    const racers = rings();

    const sealed = await Promise.all(racers.map((ring, index) => ring.seal(Buffer.from(`value ${index}`), `secret:sec_${index}:version:1`)));

    const active = await activeKeys("value");
    expect(active).toHaveLength(1);
    const keyIds = sealed.map((envelope) => envelope.split(".")[1]);
    expect(new Set(keyIds)).toEqual(new Set([active[0]!.id]));
    for (const [opener, ring] of racers.entries()) {
      for (const [index, envelope] of sealed.entries()) {
        const opened = await ring.open(envelope, `secret:sec_${index}:version:1`);
        expect(opened.toString(), `ring ${opener} opens value ${index}`).toBe(`value ${index}`);
      }
    }
  });

  it("ends with one fingerprint key", async () => {
    const racers = rings();

    const keys = await Promise.all(racers.map((ring) => ring.fingerprintKey()));

    expect(await activeKeys("fingerprint")).toHaveLength(1);
    expect(keys.every((key) => key.length === 32 && key.equals(keys[0]!))).toBe(true);
  });

  it("writes one creation audit event per key", async () => {
    const racers = rings();

    await Promise.all(racers.flatMap((ring) => [ring.seal(Buffer.from("x"), "ctx"), ring.fingerprintKey()]));

    const events = rowsOf<{ target: string; details: Record<string, unknown> }>(
      await database.db.execute(sql`select target, details from audit_events where action = 'data_key.create' order by seq`),
    );
    expect(events.map((event) => event.details["purpose"]).sort()).toEqual(["fingerprint", "value"]);
    const ids = [...(await activeKeys("value")), ...(await activeKeys("fingerprint"))].map((row) => row.id).sort();
    expect(events.map((event) => event.target).sort()).toEqual(ids);
  });

  it("value key and fingerprint key differ", async () => {
    const [ring] = rings();

    const sealed = await ring!.seal(Buffer.from("x"), "ctx");
    await ring!.fingerprintKey();

    const [value] = await activeKeys("value");
    const [fingerprint] = await activeKeys("fingerprint");
    expect(value!.id).not.toBe(fingerprint!.id);
    expect(sealed.split(".")[1]).toBe(value!.id);
  });

  it("rejects a value envelope naming the fingerprint key", async () => {
    const [ring] = rings();
    const sealed = await ring!.seal(Buffer.from("x"), "ctx");
    await ring!.fingerprintKey();
    const [fingerprint] = await activeKeys("fingerprint");
    const parts = sealed.split(".");
    parts[1] = fingerprint!.id;

    await expect(ring!.open(parts.join("."), "ctx")).rejects.toMatchObject({ name: "SealedValueRejected", reason: "unknown_key" });
  });
});
