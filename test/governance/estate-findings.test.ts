import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EstateFile } from "../../broker/estate/estate-file.js";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";
import { DAY_MS } from "./governance-fixtures.js";

const ESTATE = path.resolve("examples/estate.yaml");

interface FindingView {
  rule: string;
  records: { type: string; id: string }[];
}

describe("example estate findings", () => {
  let broker: TestBroker;
  const accountIds = new Map<string, string>();
  const grantIds: string[] = [];

  beforeAll(async () => {
    broker = await startTestBroker();
    const parsed = EstateFile.parse(await readFile(ESTATE, "utf8"), new Date(TEST_NOW));
    if ("problems" in parsed) throw new Error(JSON.stringify(parsed.problems));
    const checked = parsed.validate();
    if ("problems" in checked) throw new Error(JSON.stringify(checked.problems));
    const imported = await broker.request("POST", "/v1/import", { body: checked.estate });
    expect(imported.status, imported.text).toBe(200);
    for (const account of imported.json.service_accounts) accountIds.set(account.name, account.id);
    grantIds.push(...imported.json.grants.map((grant: { id: string }) => grant.id));
  });

  afterAll(async () => {
    await broker.close();
  });

  /** Reads the names of the accounts, and the ids of other records, that findings of `rule` name. */
  async function namedBy(rule: string): Promise<string[]> {
    const response = await broker.request("GET", `/v1/findings?rule=${rule}`, { token: broker.tokens.auditor });
    expect(response.status, response.text).toBe(200);
    const names = new Map([...accountIds].map(([name, id]) => [id, name]));
    return (response.json.items as FindingView[]).flatMap((finding) => finding.records.map((record) => names.get(record.id) ?? record.id)).sort();
  }

  it.each([
    { rule: "account-owner-missing", names: ["backup-automation", "reporting-dashboard", "reporting-etl"] },
    { rule: "review-overdue", names: ["backup-automation"] },
    { rule: "privileged-token-ttl", names: ["payments-break-glass"] },
    { rule: "account-reuse", names: ["shared-ledger-reader"] },
  ])("$rule fires on its accounts", async ({ rule, names }) => {
    const named = await namedBy(rule);

    for (const name of names) {
      expect(named).toContain(name);
    }
    expect(named.filter((entry) => accountIds.has(entry)).sort()).toEqual(names);
  });

  it("grant rules fire on their grants", async () => {
    const [, withinContract, pastContract, unapproved] = grantIds;

    const supplier = await namedBy("supplier-grant-unbounded");
    const approval = await namedBy("grant-approval-missing");

    expect(supplier).toContain(pastContract);
    expect(supplier).not.toContain(withinContract);
    expect(approval).toEqual([unapproved, "certificate-renewer"].sort());
  });

  it("compliant account has no findings", async () => {
    const response = await broker.request("GET", "/v1/findings", { token: broker.tokens.auditor });

    const mentioned = (response.json.items as FindingView[]).flatMap((finding) => finding.records.map((record) => record.id));
    expect(mentioned).not.toContain(accountIds.get("orders-api"));
    expect(mentioned).not.toContain(accountIds.get("db-admin-automation"));
  });

  it("time-based rules fire later", async () => {
    broker.clock.advance(91 * DAY_MS);

    const unused = await namedBy("account-unused");
    const expired = await namedBy("account-expired-active");

    expect(unused).toContain("orders-api");
    expect(expired).toContain("payments-break-glass");
    expect(expired).toContain("reporting-dashboard");
  });
});

describe("estate grants", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterAll(async () => {
    await broker.close();
  });

  function estateWith(grant: Record<string, unknown>, kind = "workload") {
    const name = `estate-grant-${Math.random().toString(16).slice(2, 10)}`;
    return {
      applications: [{ name, technical_owner: "ops@example.com" }],
      service_accounts: [
        {
          name,
          application: name,
          technical_owner: "ops@example.com",
          expires_at: "2027-01-01T00:00:00Z",
          kind,
          ...(kind === "supplier"
            ? { supplier: { name: "Acme", contract_ref: "CTR-1", approved_by: "cfo@example.com", approved_at: "2026-05-01T00:00:00Z" } }
            : {}),
        },
      ],
      grants: [{ service_account: name, audience: "https://api.example.com", ...grant }],
    };
  }

  it("imports a grant for an account in the file", async () => {
    const response = await broker.request("POST", "/v1/import", { body: estateWith({ approved_by: "cto@example.com" }) });

    expect(response.status, response.text).toBe(200);
    expect(response.json.grants).toHaveLength(1);
    const grant = await broker.request("GET", `/v1/grants/${response.json.grants[0].id}`);
    expect(grant.json.approved_by).toBe("cto@example.com");
  });

  it.each([
    { case: "unknown account", grant: { service_account: "no-such-account" }, kind: "workload", field: "grants[0].service_account" },
    { case: "secret and audience", grant: { secret: "db/orders" }, kind: "workload", field: "grants[0].secret" },
    { case: "supplier without not_after", grant: {}, kind: "supplier", field: "grants[0].not_after" },
    { case: "not_after in past", grant: { not_after: "2026-01-01T00:00:00Z" }, kind: "workload", field: "grants[0].not_after" },
  ])("rejects grant with $case", async ({ grant, kind, field }) => {
    const before = await broker.query("select count(*)::int as count from grants");

    const response = await broker.request("POST", "/v1/import", { body: estateWith(grant, kind) });

    expect(response.status, response.text).toBe(400);
    expect(response.json.code).toBe("validation_failed");
    expect(response.json.invalid_params.map((param: { name: string }) => param.name)).toEqual([field]);
    expect(await broker.query("select count(*)::int as count from grants")).toEqual(before);
  });
});
