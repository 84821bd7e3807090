import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { streamChunks } from "../../broker/lineage/chunk-stream.js";
import { type LineageRecord, streamLineage } from "../../broker/lineage/lineage-query.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { createWorkload, csvObjects, exportLineage, parseNdjson, type Workload } from "./lineage-fixtures.js";

/** More rows than one page of the route (1000), so that the export spans three pages. */
const BULK_LEASES = 2500;

describe("lineage paging", () => {
  let broker: TestBroker;
  let workload: Workload;
  let expectedOrder: string[];

  beforeAll(async () => {
    broker = await startTestBroker();
    workload = await createWorkload(broker);
    // Four leases share each second. The fourth is one microsecond later than the other
    // three, so pages break inside runs of equal issue times and inside one millisecond.
    await broker.query(`
      insert into leases (id, kind, service_account_id, application_id, scopes, grant_type, issued_at, expires_at, max_expires_at)
      select 'lease_' || lpad(to_hex(i * 7919 % 1000003), 24, '0'), 'access_token', '${workload.accountId}', '${workload.applicationId}',
             array['orders.read'], 'client_credentials',
             timestamptz '2026-06-01T10:00:00Z' + (i / 4) * interval '1 second' + (case when i % 4 = 3 then interval '1 microsecond' else interval '0' end),
             timestamptz '2026-06-01T10:00:00Z' + (i / 4) * interval '1 second' + interval '15 minutes',
             timestamptz '2026-06-01T10:00:00Z' + (i / 4) * interval '1 second' + interval '1 hour'
      from generate_series(0, ${BULK_LEASES - 1}) as i`);
    const ordered = await broker.query<{ id: string }>("select id from leases order by issued_at, id");
    expectedOrder = ordered.map((row) => row.id);
  });

  afterAll(async () => {
    await broker?.close();
  });

  it.each([1, 7, 1000])("visits each lease once with page size %i", async (pageSize) => {
    const ids: string[] = [];
    let pages = 0;
    for await (const page of streamLineage(broker.deps.db, broker.clock.now(), {}, pageSize)) {
      expect(page.length).toBeLessThanOrEqual(pageSize);
      ids.push(...page.map((record) => record.lease_id));
      pages += 1;
      // A cursor that fails to advance would page forever, so stop and let the test fail.
      if (ids.length > BULK_LEASES) break;
    }
    expect(ids).toEqual(expectedOrder);
    expect(pages).toBe(Math.ceil(BULK_LEASES / pageSize));
  });

  it("keeps filters on every page", async () => {
    const ids: string[] = [];
    const from = new Date("2026-06-01T10:20:00Z");
    const to = new Date("2026-06-01T10:05:00Z");
    for await (const page of streamLineage(broker.deps.db, broker.clock.now(), { from, to, serviceAccountId: workload.accountId }, 5)) {
      ids.push(...page.map((record) => record.lease_id));
    }
    // With a 15-minute TTL, a lease live after 10:20 was issued after 10:05, which `to` excludes.
    expect(ids).toEqual([]);

    const windowIds: string[] = [];
    const window = { from: new Date("2026-06-01T10:15:00Z"), to: new Date("2026-06-01T10:00:10Z") };
    for await (const page of streamLineage(broker.deps.db, broker.clock.now(), window, 6)) {
      windowIds.push(...page.map((record) => record.lease_id));
    }
    // Leases issued at 10:00:00 expire exactly at from, so only those of 10:00:01 to 10:00:09 remain.
    expect(windowIds).toEqual(expectedOrder.slice(4, 40));
  });

  it("shows a lease issued during the export once", async () => {
    const pages = streamLineage(broker.deps.db, broker.clock.now(), { serviceAccountId: workload.accountId }, 1000);
    const ids: string[] = [];
    const first = await pages.next();
    ids.push(...(first.value as LineageRecord[]).map((record) => record.lease_id));

    await broker.query(`
      insert into leases (id, kind, service_account_id, application_id, scopes, grant_type, issued_at, expires_at, max_expires_at)
      values ('lease_ffffffffffffffffffffffff', 'access_token', '${workload.accountId}', '${workload.applicationId}', array['orders.read'],
              'client_credentials', '2026-06-01T12:00:00Z', '2026-06-01T12:15:00Z', '2026-06-01T13:00:00Z')`);
    for await (const page of pages) {
      ids.push(...page.map((record) => record.lease_id));
    }

    expect(ids).toEqual([...expectedOrder, "lease_ffffffffffffffffffffffff"]);
    await broker.query("delete from leases where id = 'lease_ffffffffffffffffffffffff'");
  });

  it("streams a multi-page export through the route in every format", async () => {
    const ndjson = parseNdjson((await exportLineage(broker)).text);
    expect(ndjson.map((row) => row.lease_id)).toEqual(expectedOrder);

    const json = JSON.parse((await exportLineage(broker, { format: "json" })).text);
    expect(json.map((row: { lease_id: string }) => row.lease_id)).toEqual(expectedOrder);

    const { rows } = csvObjects((await exportLineage(broker, { format: "csv" })).text);
    expect(rows.map((row) => row["lease_id"])).toEqual(expectedOrder);
    expect(rows[0]!["scopes"]).toBe("orders.read");
  });

  it("stops reading pages when the client cancels", async () => {
    const logged = broker.logs.length;
    const response = await broker.app.request("/v1/lineage?format=csv", { headers: { authorization: `Bearer ${broker.tokens.auditor}` } });
    const reader = response.body!.getReader();
    const { value } = await reader.read();
    expect(new TextDecoder().decode(value)).toMatch(/^lease_id,/);
    await reader.cancel();

    const newLines = () => broker.logs.slice(logged);
    await expect.poll(() => newLines().some((line) => line.includes("lineage export cancelled"))).toBe(true);
    expect(newLines().some((line) => line.includes("lineage export finished"))).toBe(false);
  });
});

describe("streamChunks", () => {
  it("errors the body when a later chunk fails", async () => {
    const errors: unknown[] = [];
    async function* chunks(): AsyncGenerator<string> {
      yield "first\n";
      throw new Error("database connection lost");
    }
    const generator = chunks();
    const first = await generator.next();
    const body = streamChunks(first, generator, { onEnd: () => undefined, onCancel: () => undefined, onError: (error) => errors.push(error) });

    const reader = body.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("first\n");
    await expect(reader.read()).rejects.toThrow("database connection lost");
    expect(errors).toHaveLength(1);
  });

  it("closes the body after the last chunk", async () => {
    let ended = false;
    async function* chunks(): AsyncGenerator<string> {
      yield "a";
      yield "b";
    }
    const generator = chunks();
    const body = streamChunks(await generator.next(), generator, { onEnd: () => (ended = true), onCancel: () => undefined, onError: () => undefined });
    expect(await new Response(body).text()).toBe("ab");
    expect(ended).toBe(true);
  });
});
