import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditEvents, expectProblem, invalidParamNames, rowCount, uniqueName } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { createGrant, createSecret, obtainCredential, readLease, workloadWithToken } from "../credentials/credential-fixtures.js";

let broker: TestBroker;

beforeAll(async () => {
  broker = await startTestBroker();
});

afterAll(async () => {
  await broker?.close();
});

describe("secrets catalogue", () => {
  it("creates a local static secret with a generated first version, as in the design example", async () => {
    const name = `payments/${uniqueName("api-key")}`;
    const response = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name, adapter: "local", kind: "static", owner: "team-payments", generate: { length: 32 } },
    });

    expect(response.status, response.text).toBe(201);
    expect(response.json).toMatchObject({ name, adapter: "local", kind: "static", owner: "team-payments", current_version: "1", default_ttl: 3600, max_ttl: 86400 });
    expect(response.json.id).toMatch(/^sec_[0-9a-f]{24}$/);
    expect(response.json.generate).toEqual({ length: 32, classes: ["lower", "upper", "digits"], field: "value" });
    const [event] = (await auditEvents(broker, "action=secret.create")).filter((entry) => entry.target === response.json.id);
    expect(event!.details).toMatchObject({ name, adapter: "local", version: "1" });
    expect(String(event!.details["fingerprint"])).toMatch(/^hmac-sha256:/);
  });

  it("reads, lists with filters and pages, and never returns a value or a sealed value", async () => {
    const owner = uniqueName("owner");
    const first = await createSecret(broker, { owner, name: `team/${uniqueName("a")}` });
    const second = await createSecret(broker, { owner, name: `team/${uniqueName("b")}`, value: "operator-chosen-value-123", generate: undefined });

    const read = await broker.request("GET", `/v1/secrets/${first.id}`, { token: broker.tokens.auditor });
    expect(read.status).toBe(200);
    expect(read.json).toEqual(first);

    const page1 = await broker.request("GET", `/v1/secrets?owner=${owner}&limit=1`, { token: broker.tokens.auditor });
    const page2 = await broker.request("GET", `/v1/secrets?owner=${owner}&limit=1&cursor=${page1.json.next_cursor}`, { token: broker.tokens.auditor });
    expect([...page1.json.items, ...page2.json.items].map((item: { id: string }) => item.id).sort()).toEqual([first.id, second.id].sort());
    const byPrefix = await broker.request("GET", `/v1/secrets?name_prefix=${encodeURIComponent(first.name)}`, { token: broker.tokens.auditor });
    expect(byPrefix.json.items.map((item: { id: string }) => item.id)).toEqual([first.id]);

    const everything = [page1.text, page2.text, read.text, (await broker.request("GET", `/v1/secrets/${second.id}/versions`, { token: broker.tokens.auditor })).text];
    for (const text of everything) {
      expect(text).not.toContain("operator-chosen-value-123");
      expect(text).not.toMatch(/sealed|ciphertext/);
    }
  });

  it("finds the versions that had a leaked value by its fingerprint", async () => {
    const secret = await createSecret(broker, { value: "leaked-value-0001", generate: undefined });
    const response = await broker.request("POST", "/v1/fingerprints", { token: broker.tokens.operator, body: { value: "leaked-value-0001" } });

    expect(response.status, response.text).toBe(200);
    expect(response.json.matches).toEqual([{ secret_id: secret.id, name: secret.name, version: "1", stage: "current" }]);
    const miss = await broker.request("POST", "/v1/fingerprints", { token: broker.tokens.operator, body: { value: "never-stored" } });
    expect(miss.json.matches).toEqual([]);
    expect(JSON.stringify(await auditEvents(broker, "action=secret.fingerprint_lookup"))).not.toContain("leaked-value-0001");
  });

  it("updates owner, TTLs and rotation policy, and refuses a default TTL above the max", async () => {
    const secret = await createSecret(broker);
    const updated = await broker.request("PATCH", `/v1/secrets/${secret.id}`, {
      token: broker.tokens.operator,
      body: { owner: "team-new", max_ttl: 1800, default_ttl: 900, rotation: { schedule: "0 3 * * 1", time_zone: "Europe/Paris", max_age: 2592000 } },
    });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.json).toMatchObject({ owner: "team-new", max_ttl: 1800, default_ttl: 900, rotation: { schedule: "0 3 * * 1", old_leases: "grace" } });

    const refused = await broker.request("PATCH", `/v1/secrets/${secret.id}`, { token: broker.tokens.operator, body: { default_ttl: 3600 } });
    expectProblem(refused, 400, "validation_failed");
    expect(invalidParamNames(refused)).toEqual(["default_ttl"]);
  });

  it("deletes a secret: revokes its grants and leases, frees the name, keeps it for lineage", async () => {
    const { workload, accessToken } = await workloadWithToken(broker);
    const secret = await createSecret(broker);
    const grant = await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });
    const credential = await obtainCredential(broker, accessToken, { secret: secret.name });

    const deleted = await broker.request("DELETE", `/v1/secrets/${secret.id}`, { token: broker.tokens.operator, body: { reason: "decommissioned" } });

    expect(deleted.status, deleted.text).toBe(200);
    expect(deleted.json.deleted_at).not.toBeNull();
    expect((await readLease(broker, credential.lease_id)).status).toBe("revoked");
    expect((await broker.request("GET", `/v1/grants/${grant.id}`, { token: broker.tokens.auditor })).json.status).toBe("revoked");
    expect((await broker.request("GET", `/v1/secrets?name_prefix=${encodeURIComponent(secret.name)}`, { token: broker.tokens.auditor })).json.items).toEqual([]);
    await createSecret(broker, { name: secret.name });
    expectProblem(await broker.request("DELETE", `/v1/secrets/${secret.id}`, { token: broker.tokens.operator }), 404, "not_found");
  });

  it("refuses to delete a local secret another secret's settings use", async () => {
    const admin = await createSecret(broker, { value: { password: "admin-password-123456" }, generate: undefined });
    const dynamic = await createSecret(broker, {
      adapter: "postgres",
      kind: "dynamic",
      generate: undefined,
      settings: { connection: { host: "127.0.0.1", port: 5432, database: "orders", username: "broker_admin", password_secret: admin.name }, role: { member_of: [] } },
    });

    const refused = await broker.request("DELETE", `/v1/secrets/${admin.id}`, { token: broker.tokens.operator });
    expectProblem(refused, 409, "conflict");
    expect(refused.json.detail).toContain(dynamic.name);

    await broker.request("DELETE", `/v1/secrets/${dynamic.id}`, { token: broker.tokens.operator });
    expect((await broker.request("DELETE", `/v1/secrets/${admin.id}`, { token: broker.tokens.operator })).status).toBe(200);
  });

  it("refuses a second live secret with the same name", async () => {
    const secret = await createSecret(broker);
    const again = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name: secret.name, adapter: "local", owner: "x", generate: {} },
    });
    expectProblem(again, 409, "conflict");
  });

  it("lets auditors read but not write, and operators write", async () => {
    const body = { name: `t/${uniqueName("r")}`, adapter: "local", owner: "x", generate: {} };
    expectProblem(await broker.request("POST", "/v1/secrets", { token: broker.tokens.auditor, body }), 403, "forbidden");
    expectProblem(await broker.request("GET", "/v1/secrets", { token: null }), 401, "unauthenticated");
    expect((await broker.request("GET", "/v1/secrets", { token: broker.tokens.auditor })).status).toBe(200);
  });
});

describe("bad input on POST /v1/secrets", () => {
  const valid = { adapter: "local", kind: "static", owner: "team", generate: { length: 32 } };
  const cases: [string, Record<string, unknown>, string][] = [
    ["missing name", { name: undefined }, "name"],
    ["name with uppercase", { name: "Payments/Key" }, "name"],
    ["name with a leading slash", { name: "/payments/key" }, "name"],
    ["name with a trailing slash", { name: "payments/key/" }, "name"],
    ["name with '..' segment start", { name: "payments/../key" }, "name"],
    ["unknown adapter", { adapter: "ftp" }, "adapter"],
    ["dynamic kind for the local adapter", { kind: "dynamic", generate: undefined }, "kind"],
    ["unknown kind", { kind: "eternal" }, "kind"],
    ["missing owner", { owner: undefined }, "owner"],
    ["blank owner", { owner: "   " }, "owner"],
    ["settings for the local adapter", { settings: { path: "x" } }, "settings.path"],
    ["neither value nor generate", { generate: undefined }, "generate"],
    ["both value and generate", { value: "abc" }, "value"],
    ["generated length too short", { generate: { length: 4 } }, "generate.length"],
    ["generated length too long", { generate: { length: 100000 } }, "generate.length"],
    ["unknown character class", { generate: { classes: ["emoji"] } }, "generate.classes[0]"],
    ["duplicate character class", { generate: { classes: ["lower", "lower"] } }, "generate.classes"],
    ["empty value", { value: "", generate: undefined }, "value"],
    ["value with a number field", { value: { port: 5432 }, generate: undefined }, "value"],
    ["default_ttl below a minute", { default_ttl: 10 }, "default_ttl"],
    ["default_ttl above max_ttl", { default_ttl: 7200, max_ttl: 3600 }, "default_ttl"],
    ["max_ttl above 32 days", { max_ttl: 40 * 24 * 3600 }, "max_ttl"],
    ["rotation without schedule or max_age", { rotation: {} }, "rotation"],
    ["rotation with a bad cron", { rotation: { schedule: "every monday" } }, "rotation.schedule"],
    ["rotation with a bad time zone", { rotation: { schedule: "0 3 * * 1", time_zone: "Mars/Olympus" } }, "rotation.time_zone"],
    ["rotation max_age too short", { rotation: { max_age: 60 } }, "rotation.max_age"],
    ["rotation with an unknown lease policy", { rotation: { max_age: 86400, old_leases: "keep" } }, "rotation.old_leases"],
    ["rotation of a local value without a generate policy", { generate: undefined, value: "set-by-hand-1234", rotation: { max_age: 86400 } }, "rotation"],
    ["unknown field", { color: "red" }, "color"],
  ];

  it.each(cases)("rejects %s with 400 naming the field and writes nothing", async (_label, change, field) => {
    const before = await rowCount(broker, "secrets");
    const body: Record<string, unknown> = { name: `bad/${uniqueName("s")}`, ...valid, ...change };
    const response = await broker.request("POST", "/v1/secrets", { token: broker.tokens.operator, body });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toContain(field);
    expect(await rowCount(broker, "secrets")).toBe(before);
  });

  it("rejects bad ids and queries on the other routes", async () => {
    expectProblem(await broker.request("GET", "/v1/secrets/sec_nothex", { token: broker.tokens.auditor }), 400, "validation_failed");
    expectProblem(await broker.request("GET", "/v1/secrets/sec_0123456789abcdef01234567", { token: broker.tokens.auditor }), 404, "not_found");
    expectProblem(await broker.request("GET", "/v1/secrets?kind=eternal", { token: broker.tokens.auditor }), 400, "validation_failed");
    expectProblem(await broker.request("GET", "/v1/secrets?include_deleted=yes", { token: broker.tokens.auditor }), 400, "validation_failed");
    expectProblem(await broker.request("PATCH", "/v1/secrets/sec_0123456789abcdef01234567", { token: broker.tokens.operator, body: {} }), 400, "validation_failed");
    expectProblem(await broker.request("POST", "/v1/fingerprints", { token: broker.tokens.operator, body: { value: 42 } }), 400, "validation_failed");
  });
});
