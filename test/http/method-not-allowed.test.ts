import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectProblem } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

/** A known path with a method it does not take gets 405 and `Allow`; an unknown path gets 404. */
describe("method not allowed", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterAll(async () => {
    await broker.close();
  });

  it("GET on the introspection endpoint", async () => {
    const response = await broker.request("GET", "/v1/introspect", { token: null });

    expectProblem(response, 405, "method_not_allowed");
    expect(response.headers.get("allow")).toBe("POST");
    expect(response.json.detail).toBe("/v1/introspect does not take GET; use POST");
  });

  it("DELETE on a collection", async () => {
    const response = await broker.request("DELETE", "/v1/applications");

    expectProblem(response, 405, "method_not_allowed");
    expect(response.headers.get("allow")).toBe("GET, POST");
  });

  it("PUT on a path with an id", async () => {
    const response = await broker.request("PUT", "/v1/leases/lease_0123456789abcdef01234567/renew");

    expectProblem(response, 405, "method_not_allowed");
    expect(response.headers.get("allow")).toBe("POST");
  });

  it("unknown path still 404", async () => {
    const response = await broker.request("GET", "/v1/no-such-thing");

    expectProblem(response, 404, "not_found");
    expect(response.headers.get("allow")).toBeNull();
  });
});
