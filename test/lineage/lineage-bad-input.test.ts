import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { exportLineage } from "./lineage-fixtures.js";

const ACCOUNT_ID = "sa_0123456789abcdef01234567";
const APPLICATION_ID = "app_0123456789abcdef01234567";

describe("GET /v1/lineage with bad input", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterAll(async () => {
    await broker?.close();
  });

  it.each([
    { name: "unknown format", query: "format=xml", field: "format" },
    { name: "format in capitals", query: "format=CSV", field: "format" },
    { name: "empty format", query: "format=", field: "format" },
    { name: "format given twice", query: "format=csv&format=json", field: "format" },
    { name: "from in words", query: "from=yesterday", field: "from" },
    { name: "from without a time zone", query: "from=2026-06-01T12:00:00", field: "from" },
    { name: "to as a date only", query: "to=2026-06-01", field: "to" },
    { name: "to as epoch seconds", query: "to=1780000000", field: "to" },
    { name: "from after to", query: "from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z", field: "to" },
    { name: "from equal to to", query: "from=2026-06-01T00:00:00Z&to=2026-06-01T02:00:00%2B02:00", field: "to" },
    { name: "unknown field", query: "status=active", field: "status" },
    { name: "misspelt filter", query: "service_account=sa_0123456789abcdef01234567", field: "service_account" },
    { name: "service account id too short", query: "service_account_id=sa_123", field: "service_account_id" },
    { name: "application id as service account id", query: `service_account_id=${APPLICATION_ID}`, field: "service_account_id" },
    { name: "service account id as application id", query: `application_id=${ACCOUNT_ID}`, field: "application_id" },
    { name: "id with SQL in it", query: `service_account_id=${encodeURIComponent("sa_1' or '1'='1")}`, field: "service_account_id" },
    { name: "empty application id", query: "application_id=", field: "application_id" },
  ])("rejects $name with 400", async ({ query, field }) => {
    const response = await broker.request("GET", `/v1/lineage?${query}`, { token: broker.tokens.auditor });

    expect(response.status, response.text).toBe(400);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(response.json.code).toBe("validation_failed");
    expect(response.json.type).toBe("urn:secrets-broker:problem:validation-failed");
    expect(response.json.invalid_params.map((param: { name: string }) => param.name)).toContain(field);
  });

  it("names the allowed formats", async () => {
    const response = await exportLineage(broker, { format: "xlsx" });
    expect(response.json.invalid_params).toEqual([{ name: "format", reason: "must be one of json, ndjson, csv" }]);
  });

  it("returns an empty export for an unknown but well-formed id", async () => {
    const ndjson = await exportLineage(broker, { service_account_id: ACCOUNT_ID });
    expect(ndjson.status).toBe(200);
    expect(ndjson.text).toBe("");

    const json = await exportLineage(broker, { application_id: APPLICATION_ID, format: "json" });
    expect(json.status).toBe(200);
    expect(JSON.parse(json.text)).toEqual([]);

    const csv = await exportLineage(broker, { service_account_id: ACCOUNT_ID, format: "csv" });
    expect(csv.status).toBe(200);
    expect(csv.text.split("\r\n")).toEqual([expect.stringMatching(/^lease_id,kind,service_account_id,/), ""]);
  });

  it("rejects an unknown operator token", async () => {
    const response = await exportLineage(broker, {}, "sbo_tok_0123456789abcdef01234567.not-a-secret");
    expect(response.status).toBe(401);
    expect(response.json.code).toBe("unauthenticated");
  });

  it("rejects methods other than GET", async () => {
    const response = await broker.request("POST", "/v1/lineage", { body: {} });
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("GET");
    expect(response.headers.get("content-type")).toBe("application/problem+json");
  });
});
