import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createOperatorToken,
  expectProblem,
  invalidParamNames,
  registerSnapshot,
  tokenIdOf,
  uniqueName,
} from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";

const HOUR_MS = 60 * 60 * 1000;

describe("operator tokens", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterEach(() => {
    broker.clock.set(TEST_NOW);
  });

  afterAll(async () => {
    await broker.close();
  });

  it("create returns token once", async () => {
    const name = uniqueName("ci-pipeline");

    const created = await broker.request("POST", "/v1/operator-tokens", {
      body: { role: "operator", name, expires_at: "2026-07-01T00:00:00Z" },
    });
    const listed = await broker.request("GET", "/v1/operator-tokens");

    expect(created.status).toBe(201);
    expect(created.json.token).toMatch(/^sbo_tok_[0-9a-f]{24}\.[A-Za-z0-9_-]{43}$/);
    expect(tokenIdOf(created.json.token)).toBe(created.json.id);
    expect(created.json.created_by).toBe(`operator:${tokenIdOf(broker.tokens.admin)}`);
    expect(created.json.expires_at).toBe("2026-07-01T00:00:00.000Z");
    expect(listed.text).not.toContain(created.json.token.split(".")[1]);
    expect(listed.json.items.find((item: { id: string }) => item.id === created.json.id)).not.toHaveProperty("token");
  });

  it("stores only hash of token", async () => {
    const created = await createOperatorToken(broker);

    const rows = await broker.query<Record<string, unknown>>(`select * from operator_tokens where id = '${created.id}'`);

    expect(JSON.stringify(rows)).not.toContain(created.token.split(".")[1]);
  });

  it.each(["admin", "operator", "auditor"])("new %s token authenticates with its role", async (role) => {
    const created = await createOperatorToken(broker, { role });

    const readable = await broker.request("GET", "/v1/applications", { token: created.token });
    const tokenList = await broker.request("GET", "/v1/operator-tokens", { token: created.token });

    expect(readable.status).toBe(200);
    expect(tokenList.status).toBe(role === "admin" ? 200 : 403);
  });

  it.each([
    { case: "role missing", body: { name: "n" }, field: "role" },
    { case: "role unknown", body: { role: "root", name: "n" }, field: "role" },
    { case: "role uppercase", body: { role: "ADMIN", name: "n" }, field: "role" },
    { case: "name missing", body: { role: "auditor" }, field: "name" },
    { case: "name blank", body: { role: "auditor", name: "   " }, field: "name" },
    { case: "name over 128 characters", body: { role: "auditor", name: "n".repeat(129) }, field: "name" },
    { case: "expires_at in past", body: { role: "auditor", name: "n", expires_at: "2026-05-01T00:00:00Z" }, field: "expires_at" },
    { case: "expires_at equal to now", body: { role: "auditor", name: "n", expires_at: TEST_NOW }, field: "expires_at" },
    { case: "expires_at malformed", body: { role: "auditor", name: "n", expires_at: "next month" }, field: "expires_at" },
    { case: "unknown field", body: { role: "auditor", name: "n", scopes: ["read"] }, field: "scopes" },
  ])("create rejects $case", async ({ body, field }) => {
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/operator-tokens", { body });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("revoked token rejected", async () => {
    const created = await createOperatorToken(broker, { role: "operator" });

    const revoked = await broker.request("POST", `/v1/operator-tokens/${created.id}/revoke`);
    const rejected = await broker.request("GET", "/v1/applications", { token: created.token });

    expect(revoked.status).toBe(200);
    expect(revoked.json.revoked_at).toBe(TEST_NOW);
    expect(revoked.json.revoked_by).toBe(`operator:${tokenIdOf(broker.tokens.admin)}`);
    expectProblem(rejected, 401, "unauthenticated");
  });

  it("token expires at expires_at", async () => {
    const expiresAt = new Date(broker.clock.now().getTime() + HOUR_MS);
    const created = await createOperatorToken(broker, { role: "operator", expires_at: expiresAt.toISOString() });

    broker.clock.set(new Date(expiresAt.getTime() - 1));
    const beforeExpiry = await broker.request("GET", "/v1/applications", { token: created.token });
    broker.clock.set(expiresAt);
    const atExpiry = await broker.request("GET", "/v1/applications", { token: created.token });

    expect(beforeExpiry.status).toBe(200);
    expectProblem(atExpiry, 401, "unauthenticated");
  });

  it("revoke of unknown token returns 404", async () => {
    const response = await broker.request("POST", "/v1/operator-tokens/tok_0123456789abcdef01234567/revoke");

    expectProblem(response, 404, "not_found");
  });

  it("revoke of malformed id returns 400", async () => {
    const response = await broker.request("POST", "/v1/operator-tokens/sa_0123456789abcdef01234567/revoke");

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual(["id"]);
  });
});

describe("last admin token", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterAll(async () => {
    await broker.close();
  });

  it("revoke of only admin token returns 409", async () => {
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", `/v1/operator-tokens/${tokenIdOf(broker.tokens.admin)}/revoke`);

    expectProblem(response, 409, "conflict");
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("expired admin token does not count as usable", async () => {
    await createOperatorToken(broker, {
      role: "admin",
      expires_at: new Date(broker.clock.now().getTime() + HOUR_MS).toISOString(),
    });
    broker.clock.advance(2 * HOUR_MS);

    const response = await broker.request("POST", `/v1/operator-tokens/${tokenIdOf(broker.tokens.admin)}/revoke`);

    expectProblem(response, 409, "conflict");
  });

  it("revoke keeps one usable admin", async () => {
    const second = await createOperatorToken(broker, { role: "admin" });

    const first = await broker.request("POST", `/v1/operator-tokens/${tokenIdOf(broker.tokens.admin)}/revoke`, { token: second.token });
    const last = await broker.request("POST", `/v1/operator-tokens/${second.id}/revoke`, { token: second.token });
    const stillAdmin = await broker.request("GET", "/v1/operator-tokens", { token: second.token });

    expect(first.status).toBe(200);
    expectProblem(last, 409, "conflict");
    expect(stillAdmin.status).toBe(200);
  });
});
