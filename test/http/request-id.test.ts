import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

describe("request id header", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterAll(async () => {
    await broker.close();
  });

  it.each([
    ["lineage ndjson", "/v1/lineage"],
    ["lineage csv", "/v1/lineage?format=csv"],
    ["lineage bad format", "/v1/lineage?format=xml"],
    ["audit events", "/v1/audit/events"],
    ["unknown route", "/v1/nothing-here"],
  ])("%s carries X-Request-Id", async (_name, path) => {
    const response = await broker.request("GET", path);

    expect(response.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});
