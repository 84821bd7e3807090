import { createHash } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AuditEventView } from "../../broker/audit/audit-query.js";
import { auditEvents, createOperatorToken, createServiceAccount, createTrustedIssuer, lastAuditSeq } from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";

const GENESIS_HASH = "0".repeat(64);
const DISABLE_TRIGGER = "alter table audit_events disable trigger audit_events_no_update_or_delete";
const ENABLE_TRIGGER = "alter table audit_events enable trigger audit_events_no_update_or_delete";

/** JSON with object keys sorted at every level: the bytes the chain hashes. */
function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map(canonicalJson).join(",")}]`;
  }
  const keys = Object.keys(value).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`).join(",")}}`;
}

/** Recomputes an exported event's hash from its content, as an auditor would offline. */
function eventHash(event: AuditEventView): string {
  const { prev_hash: prevHash, hash: _hash, seq, ...content } = event;
  return createHash("sha256").update(`${prevHash}\n${seq}\n${canonicalJson(content)}`, "utf8").digest("hex");
}

function sqlText(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

describe("audit chain", () => {
  let broker: TestBroker;
  let events: AuditEventView[];
  let lastSeq: number;

  beforeAll(async () => {
    broker = await startTestBroker();
    const account = await createServiceAccount(broker);
    await broker.request("POST", `/v1/service-accounts/${account.id}/suspend`, { body: { reason: "incident INC-7" } });
    await broker.request("POST", `/v1/service-accounts/${account.id}/activate`);
    await createTrustedIssuer(broker);
    await createOperatorToken(broker);
    await broker.request("GET", "/v1/applications", { token: null });
    await broker.request("POST", `/v1/service-accounts/${account.id}/suspend`, { token: broker.tokens.auditor });

    events = await auditEvents(broker);
    lastSeq = await lastAuditSeq(broker);
    await broker.query("create table audit_events_original as select * from audit_events");
  });

  afterEach(async () => {
    // Puts the untampered chain back for the next case.
    await broker.query(DISABLE_TRIGGER);
    await broker.query("delete from audit_events");
    await broker.query("insert into audit_events select * from audit_events_original");
    await broker.query(ENABLE_TRIGGER);
  });

  afterAll(async () => {
    await broker.close();
  });

  async function verify() {
    const response = await broker.request("GET", "/v1/audit/verify", { token: broker.tokens.auditor });
    expect(response.status).toBe(200);
    return response.json as { valid: boolean; events: number; first_invalid_seq?: number; reason?: string };
  }

  async function tamper(...statements: string[]): Promise<void> {
    await broker.query(DISABLE_TRIGGER);
    for (const statement of statements) {
      await broker.query(statement);
    }
    await broker.query(ENABLE_TRIGGER);
  }

  it("verify reports untampered chain valid", async () => {
    const result = await verify();

    expect(lastSeq).toBeGreaterThanOrEqual(10);
    expect(result).toEqual({ valid: true, events: lastSeq, pending: 0 });
  });

  it("exported events rehash offline", () => {
    expect(events[0]!.prev_hash).toBe(GENESIS_HASH);
    for (const [index, event] of events.entries()) {
      expect(event.seq).toBe(index + 1);
      expect(eventHash(event)).toBe(event.hash);
      if (index > 0) {
        expect(event.prev_hash).toBe(events[index - 1]!.hash);
      }
    }
  });

  it.each([
    {
      case: "edited details",
      statements: () => [`update audit_events set details = '{"reason": "routine"}'::jsonb where seq = 5`],
      firstInvalid: () => 5,
    },
    { case: "edited actor", statements: () => ["update audit_events set actor = 'system' where seq = 4"], firstInvalid: () => 4 },
    { case: "edited outcome", statements: () => ["update audit_events set outcome = 'success' where seq = $LAST"], firstInvalid: () => lastSeq },
    { case: "edited time", statements: () => ["update audit_events set occurred_at = occurred_at - interval '1 day' where seq = 6"], firstInvalid: () => 6 },
    { case: "edited prev_hash", statements: () => [`update audit_events set prev_hash = '${GENESIS_HASH}' where seq = 3`], firstInvalid: () => 3 },
    { case: "deleted first row", statements: () => ["delete from audit_events where seq = 1"], firstInvalid: () => 1 },
    { case: "deleted middle row", statements: () => ["delete from audit_events where seq = 5"], firstInvalid: () => 5 },
    { case: "deleted tail row", statements: () => ["delete from audit_events where seq = $LAST"], firstInvalid: () => lastSeq },
    { case: "deleted two tail rows", statements: () => ["delete from audit_events where seq >= $LAST - 1"], firstInvalid: () => lastSeq - 1 },
    {
      case: "two rows swapped",
      statements: () => [
        "update audit_events set seq = -1 where seq = 4",
        "update audit_events set seq = 4 where seq = 5",
        "update audit_events set seq = 5 where seq = -1",
      ],
      firstInvalid: () => 4,
    },
    { case: "row renumbered", statements: () => ["update audit_events set seq = seq + 100 where seq = $LAST"], firstInvalid: () => lastSeq },
  ])("verify reports $case", async ({ statements, firstInvalid }) => {
    await tamper(...statements().map((statement) => statement.replaceAll("$LAST", String(lastSeq))));

    const result = await verify();

    expect(result.valid).toBe(false);
    expect(result.first_invalid_seq).toBe(firstInvalid());
    expect(result.reason).toContain(String(firstInvalid()));
  });

  it("verify reports edit with recomputed hash at next event", async () => {
    // The edited event is consistent with itself, so the break shows where the next event points back to it.
    const edited = { ...events[4]!, details: { ...events[4]!.details, reason: "routine" } };
    edited.hash = eventHash(edited);
    await tamper(`update audit_events set details = ${sqlText(JSON.stringify(edited.details))}::jsonb, hash = '${edited.hash}' where seq = 5`);

    const result = await verify();

    expect(result.valid).toBe(false);
    expect(result.first_invalid_seq).toBe(6);
  });

  it("verify reports last event edited with recomputed hash", async () => {
    const last = events[events.length - 1]!;
    const edited = { ...last, actor: "system" };
    edited.hash = eventHash(edited);
    await tamper(`update audit_events set actor = 'system', hash = '${edited.hash}' where seq = ${last.seq}`);

    const result = await verify();

    expect(result.valid).toBe(false);
    expect(result.first_invalid_seq).toBe(last.seq);
  });

  it("verify reports forged event appended past head", async () => {
    const last = events[events.length - 1]!;
    const forged: AuditEventView = {
      seq: last.seq + 1,
      occurred_at: TEST_NOW,
      actor: "system",
      action: "service_account.activate",
      target: null,
      outcome: "success",
      request_id: null,
      source_address: null,
      details: {},
      prev_hash: last.hash,
      hash: "",
    };
    forged.hash = eventHash(forged);

    // Appending needs no trigger change: the table only rejects UPDATE, DELETE and TRUNCATE.
    await broker.query(
      `insert into audit_events (seq, occurred_at, actor, action, target, outcome, request_id, source_address, details, prev_hash, hash)
       values (${forged.seq}, '${forged.occurred_at}', 'system', '${forged.action}', null, 'success', null, null, '{}'::jsonb, '${forged.prev_hash}', '${forged.hash}')`,
    );
    const result = await verify();

    expect(result.valid).toBe(false);
    expect(result.first_invalid_seq).toBe(forged.seq);
  });

  it.each([
    { case: "UPDATE", statement: "update audit_events set actor = 'system' where seq = 2" },
    { case: "DELETE", statement: "delete from audit_events where seq = 2" },
    { case: "TRUNCATE", statement: "truncate audit_events" },
  ])("database rejects $case while trigger enabled", async ({ statement }) => {
    const error = await broker.query(statement).then(
      () => undefined,
      (caught: unknown) => caught as { cause?: { code?: string; message?: string } },
    );

    expect(error).toBeDefined();
    expect(error?.cause?.code).toBe("42501");
    expect(error?.cause?.message).toContain("append-only");
    expect(await auditEvents(broker)).toEqual(events);
    expect((await verify()).valid).toBe(true);
  });
});

describe("audit chain under concurrent writes", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterAll(async () => {
    await broker.close();
  });

  it("verify stays valid while events are appended", async () => {
    const writes = Array.from({ length: 60 }, (_, index) =>
      broker.request("POST", "/v1/applications", { body: { name: `concurrent-${index}`, technical_owner: "team@example.com" } }),
    );
    const verifications = Array.from({ length: 20 }, () => broker.request("GET", "/v1/audit/verify"));

    const results = await Promise.all(verifications);
    const created = await Promise.all(writes);

    expect(created.every((response) => response.status === 201)).toBe(true);
    expect(results.filter((response) => response.json.valid !== true).map((response) => response.text)).toEqual([]);
    expect((await broker.request("GET", "/v1/audit/verify")).json.valid).toBe(true);
  });
});
