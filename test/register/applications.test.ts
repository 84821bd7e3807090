import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApplication, expectProblem, invalidParamNames, registerSnapshot, uniqueName } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

describe("applications", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterAll(async () => {
    await broker.close();
  });

  function validApplication(): Record<string, unknown> {
    return { name: uniqueName("orders"), technical_owner: "team-orders@example.com" };
  }

  it("create returns application with defaults", async () => {
    const name = uniqueName("orders");

    const response = await broker.request("POST", "/v1/applications", {
      body: { name, technical_owner: "team-orders@example.com", business_owner: "head-of-sales@example.com" },
    });

    expect(response.status).toBe(201);
    expect(response.json.id).toMatch(/^app_[0-9a-f]{24}$/);
    expect(response.json.name).toBe(name);
    expect(response.json.business_owner).toBe("head-of-sales@example.com");
    expect(response.json.criticality).toBe("medium");
    expect(response.json.regulated).toBe(false);
    expect(response.json.created_at).toBe(broker.clock.now().toISOString());
  });

  it.each([
    { case: "name missing", change: { name: undefined }, field: "name" },
    { case: "name empty", change: { name: "" }, field: "name" },
    { case: "name uppercase", change: { name: "Orders" }, field: "name" },
    { case: "name leading dash", change: { name: "-orders" }, field: "name" },
    { case: "name with space", change: { name: "orders api" }, field: "name" },
    { case: "name with slash", change: { name: "orders/api" }, field: "name" },
    { case: "name of 129 characters", change: { name: "a".repeat(129) }, field: "name" },
    { case: "name not a string", change: { name: 42 }, field: "name" },
    { case: "technical_owner missing", change: { technical_owner: undefined }, field: "technical_owner" },
    { case: "technical_owner blank", change: { technical_owner: "   " }, field: "technical_owner" },
    { case: "business_owner empty", change: { business_owner: "" }, field: "business_owner" },
    { case: "criticality unknown", change: { criticality: "severe" }, field: "criticality" },
    { case: "regulated as string", change: { regulated: "yes" }, field: "regulated" },
    { case: "unknown field", change: { owner: "someone" }, field: "owner" },
  ])("create rejects $case", async ({ change, field }) => {
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/applications", { body: { ...validApplication(), ...change } });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it.each([
    { case: "name of 128 characters", change: { name: `${"b".repeat(127)}1` } },
    { case: "name with dot, dash and underscore", change: { name: "orders.api_v2-eu" } },
    { case: "criticality critical", change: { criticality: "critical" } },
    { case: "regulated true", change: { regulated: true } },
  ])("create accepts $case", async ({ change }) => {
    const response = await broker.request("POST", "/v1/applications", { body: { ...validApplication(), ...change } });

    expect(response.status, response.text).toBe(201);
  });

  it("create rejects duplicate name with 409", async () => {
    const existing = await createApplication(broker);
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/applications", { body: { ...validApplication(), name: existing.name } });

    expectProblem(response, 409, "conflict");
    expect(response.json.detail).toContain(existing.id);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it.each([
    { case: "empty body", body: {}, field: "body" },
    { case: "name change", body: { name: "renamed", regulated: true }, field: "name" },
    { case: "criticality unknown", body: { criticality: "urgent" }, field: "criticality" },
    { case: "technical_owner blank", body: { technical_owner: "" }, field: "technical_owner" },
    { case: "regulated as number", body: { regulated: 1 }, field: "regulated" },
  ])("update rejects $case", async ({ body, field }) => {
    const application = await createApplication(broker);
    const before = await registerSnapshot(broker);

    const response = await broker.request("PATCH", `/v1/applications/${application.id}`, { body });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("update changes only given fields", async () => {
    const application = await createApplication(broker, { business_owner: "sales@example.com", criticality: "low" });

    const response = await broker.request("PATCH", `/v1/applications/${application.id}`, { body: { regulated: true } });

    expect(response.status).toBe(200);
    expect(response.json.regulated).toBe(true);
    expect(response.json.criticality).toBe("low");
    expect(response.json.business_owner).toBe("sales@example.com");
  });

  it("update clears business_owner with null", async () => {
    const application = await createApplication(broker, { business_owner: "sales@example.com" });

    const response = await broker.request("PATCH", `/v1/applications/${application.id}`, { body: { business_owner: null } });

    expect(response.status).toBe(200);
    expect(response.json.business_owner).toBeNull();
  });

  it("list pages by id", async () => {
    await createApplication(broker);
    await createApplication(broker);

    const first = await broker.request("GET", "/v1/applications?limit=1");
    const second = await broker.request("GET", `/v1/applications?limit=1&cursor=${first.json.next_cursor}`);

    expect(first.json.items).toHaveLength(1);
    expect(first.json.next_cursor).toBe(first.json.items[0].id);
    expect(second.json.items[0].id > first.json.items[0].id).toBe(true);
  });

  it.each([
    { case: "limit zero", query: "limit=0", field: "limit" },
    { case: "limit above maximum", query: "limit=1001", field: "limit" },
    { case: "limit not a number", query: "limit=ten", field: "limit" },
    { case: "unknown parameter", query: "sort=name", field: "sort" },
  ])("list rejects $case", async ({ query, field }) => {
    const response = await broker.request("GET", `/v1/applications?${query}`);

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
  });
});
