import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../broker/config/config.js";
import { registerSnapshot } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

describe("input edge cases", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterAll(async () => {
    await broker.close();
  });

  it.each([
    "/v1/service-accounts?owner=%00",
    "/v1/leases?status=active&service_account_id=sa_%00",
    "/v1/audit/events?actor=%00",
  ])("NUL in query %s rejected with 400", async (path) => {
    const response = await broker.request("GET", path);

    expect(response.status).toBe(400);
    expect(response.json.code).toBe("validation_failed");
    expect(response.json.invalid_params[0].name).toBe("query");
  });

  it("NUL in body field rejected without a write", async () => {
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/applications", {
      body: { name: "nul-owner", technical_owner: "a\u0000b@example.com" },
    });

    expect(response.status).toBe(400);
    expect(response.json.code).toBe("validation_failed");
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it.each(["abc", "sa_zzz", "sa_0123"])("malformed cursor %s rejected", async (cursor) => {
    const response = await broker.request("GET", `/v1/service-accounts?cursor=${cursor}`);

    expect(response.status).toBe(400);
    expect(response.json.invalid_params[0].name).toBe("cursor");
  });

  it.each(["0", "notaport", "8080.5", "70000"])("PORT=%s rejected with the allowed range", (port) => {
    expect(() => loadConfig({ PORT: port })).toThrow(/PORT: must be a port number from 1 to 65535/);
  });
});
