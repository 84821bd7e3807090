import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createApplication,
  createServiceAccount,
  expectProblem,
  FUTURE_EXPIRY,
  invalidParamNames,
  registerSnapshot,
  uniqueName,
} from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";

const SUPPLIER = {
  name: "Acme Payments GmbH",
  contract_ref: "CTR-2026-017",
  approved_by: "ciso@example.com",
  approved_at: "2026-05-20T09:00:00Z",
};

const ONE_DAY_LATER = "2026-06-02T12:00:00.000Z";
const ONE_DAY_EARLIER = "2026-05-31T12:00:00.000Z";

describe("service accounts", () => {
  let broker: TestBroker;
  let applicationId: string;

  beforeAll(async () => {
    broker = await startTestBroker();
    applicationId = (await createApplication(broker)).id;
  });

  afterAll(async () => {
    await broker.close();
  });

  function validAccount(): Record<string, unknown> {
    return {
      name: uniqueName("orders-api"),
      application_id: applicationId,
      technical_owner: "alice@example.com",
      expires_at: FUTURE_EXPIRY,
    };
  }

  it("create returns account with defaults", async () => {
    const body = validAccount();

    const response = await broker.request("POST", "/v1/service-accounts", { body });

    expect(response.status).toBe(201);
    expect(response.json.id).toMatch(/^sa_[0-9a-f]{24}$/);
    expect(response.json.status).toBe("active");
    expect(response.json.kind).toBe("workload");
    expect(response.json.privileged).toBe(false);
    expect(response.json.review_interval_days).toBe(90);
    expect(response.json.next_review_at).toBe("2026-08-30T12:00:00.000Z");
    expect(response.json.max_token_ttl).toBe(900);
    expect(response.json.allowed_scopes).toEqual([]);
    expect(response.json.supplier).toBeNull();
    expect(response.json.expires_at).toBe(FUTURE_EXPIRY);
  });

  it.each([
    { case: "name missing", change: { name: undefined }, field: "name" },
    { case: "name uppercase", change: { name: "Orders-API" }, field: "name" },
    { case: "name starting with underscore", change: { name: "_orders" }, field: "name" },
    { case: "application_id missing", change: { application_id: undefined }, field: "application_id" },
    { case: "application_id malformed", change: { application_id: "orders" }, field: "application_id" },
    { case: "application_id unknown", change: { application_id: "app_0123456789abcdef01234567" }, field: "application_id" },
    { case: "technical_owner missing", change: { technical_owner: undefined }, field: "technical_owner" },
    { case: "technical_owner blank", change: { technical_owner: " " }, field: "technical_owner" },
    { case: "expires_at missing", change: { expires_at: undefined }, field: "expires_at" },
    { case: "expires_at in past", change: { expires_at: ONE_DAY_EARLIER }, field: "expires_at" },
    { case: "expires_at equal to now", change: { expires_at: TEST_NOW }, field: "expires_at" },
    { case: "expires_at without time zone", change: { expires_at: "2027-01-01T00:00:00" }, field: "expires_at" },
    { case: "expires_at date only", change: { expires_at: "2027-01-01" }, field: "expires_at" },
    { case: "expires_at as number", change: { expires_at: 1798761600 }, field: "expires_at" },
    { case: "kind unknown", change: { kind: "robot" }, field: "kind" },
    { case: "privileged as string", change: { privileged: "true" }, field: "privileged" },
    { case: "kind supplier without supplier", change: { kind: "supplier" }, field: "supplier" },
    { case: "supplier on workload", change: { kind: "workload", supplier: SUPPLIER }, field: "supplier" },
    { case: "supplier on default kind", change: { supplier: SUPPLIER }, field: "supplier" },
    {
      case: "supplier without contract_ref",
      change: { kind: "supplier", supplier: { ...SUPPLIER, contract_ref: undefined } },
      field: "supplier.contract_ref",
    },
    {
      case: "supplier approved_at malformed",
      change: { kind: "supplier", supplier: { ...SUPPLIER, approved_at: "last week" } },
      field: "supplier.approved_at",
    },
    {
      case: "supplier unknown field",
      change: { kind: "supplier", supplier: { ...SUPPLIER, iban: "DE00" } },
      field: "supplier.iban",
    },
    { case: "max_token_ttl below 60", change: { max_token_ttl: 59 }, field: "max_token_ttl" },
    { case: "max_token_ttl above 12 hours", change: { max_token_ttl: 43_201 }, field: "max_token_ttl" },
    { case: "max_token_ttl fractional", change: { max_token_ttl: 600.5 }, field: "max_token_ttl" },
    { case: "max_token_ttl as string", change: { max_token_ttl: "600" }, field: "max_token_ttl" },
    { case: "review_interval_days zero", change: { review_interval_days: 0 }, field: "review_interval_days" },
    { case: "review_interval_days above 730", change: { review_interval_days: 731 }, field: "review_interval_days" },
    { case: "last_reviewed_at in future", change: { last_reviewed_at: ONE_DAY_LATER }, field: "last_reviewed_at" },
    { case: "duplicate scopes", change: { allowed_scopes: ["orders:read", "orders:read"] }, field: "allowed_scopes" },
    { case: "duplicate audiences", change: { allowed_audiences: ["https://api", "https://api"] }, field: "allowed_audiences" },
    { case: "scope with space", change: { allowed_scopes: ["orders:read orders:write"] }, field: "allowed_scopes[0]" },
    { case: "scope with double quote", change: { allowed_scopes: ["ok", 'orders"read'] }, field: "allowed_scopes[1]" },
    { case: "scope with backslash", change: { allowed_scopes: ["orders\\read"] }, field: "allowed_scopes[0]" },
    { case: "scope empty", change: { allowed_scopes: [""] }, field: "allowed_scopes[0]" },
    { case: "scope with non-ASCII letter", change: { allowed_scopes: ["commandes:écrire"] }, field: "allowed_scopes[0]" },
    { case: "scope with control character", change: { allowed_scopes: ["orders\tread"] }, field: "allowed_scopes[0]" },
    { case: "scope of 129 characters", change: { allowed_scopes: ["s".repeat(129)] }, field: "allowed_scopes[0]" },
    { case: "scopes not a list", change: { allowed_scopes: "orders:read" }, field: "allowed_scopes" },
    { case: "audience empty", change: { allowed_audiences: [""] }, field: "allowed_audiences[0]" },
    { case: "unknown field", change: { owner: "alice@example.com" }, field: "owner" },
  ])("create rejects $case", async ({ change, field }) => {
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/service-accounts", { body: { ...validAccount(), ...change } });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("create reports missing expires_at as required", async () => {
    const response = await broker.request("POST", "/v1/service-accounts", { body: { ...validAccount(), expires_at: undefined } });

    expect(response.json.invalid_params[0].reason).toMatch(/^is required/);
  });

  it.each([
    { case: "max_token_ttl of 60", change: { max_token_ttl: 60 } },
    { case: "max_token_ttl of 12 hours", change: { max_token_ttl: 43_200 } },
    { case: "review_interval_days of 1", change: { review_interval_days: 1 } },
    { case: "review_interval_days of 730", change: { review_interval_days: 730 } },
    { case: "last_reviewed_at equal to now", change: { last_reviewed_at: TEST_NOW } },
    { case: "expires_at with offset", change: { expires_at: "2027-01-01T02:00:00+02:00" } },
    { case: "scope tokens with punctuation", change: { allowed_scopes: ["orders:read", "!#$%&'()*+,-./:;<=>?@[]^_`{|}~"] } },
    { case: "kind supplier with supplier", change: { kind: "supplier", supplier: SUPPLIER } },
    { case: "kind ci", change: { kind: "ci", privileged: true } },
  ])("create accepts $case", async ({ change }) => {
    const response = await broker.request("POST", "/v1/service-accounts", { body: { ...validAccount(), ...change } });

    expect(response.status, response.text).toBe(201);
  });

  it("create rejects duplicate name with 409", async () => {
    const existing = await createServiceAccount(broker, { application_id: applicationId });
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/service-accounts", { body: { ...validAccount(), name: existing.name } });

    expectProblem(response, 409, "conflict");
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("review falls due after last_reviewed_at plus interval", async () => {
    const response = await broker.request("POST", "/v1/service-accounts", {
      body: { ...validAccount(), last_reviewed_at: "2026-05-01T00:00:00Z", review_interval_days: 30 },
    });

    expect(response.json.next_review_at).toBe("2026-05-31T00:00:00.000Z");
    expect(response.json.review_overdue).toBe(true);
  });

  it.each([
    { case: "empty body", body: {}, field: "body" },
    { case: "name change", body: { name: "renamed", privileged: true }, field: "name" },
    { case: "application_id change", body: { application_id: "app_0123456789abcdef01234567", privileged: true }, field: "application_id" },
    { case: "expires_at in past", body: { expires_at: ONE_DAY_EARLIER }, field: "expires_at" },
    { case: "expires_at malformed", body: { expires_at: "tomorrow" }, field: "expires_at" },
    { case: "kind supplier without supplier", body: { kind: "supplier" }, field: "supplier" },
    { case: "supplier on workload", body: { supplier: SUPPLIER }, field: "supplier" },
    { case: "max_token_ttl zero", body: { max_token_ttl: 0 }, field: "max_token_ttl" },
    { case: "duplicate scopes", body: { allowed_scopes: ["a", "a"] }, field: "allowed_scopes" },
    { case: "scope with space", body: { allowed_scopes: ["a b"] }, field: "allowed_scopes[0]" },
    { case: "status change", body: { status: "suspended", privileged: true }, field: "status" },
  ])("update rejects $case", async ({ body, field }) => {
    const account = await createServiceAccount(broker, { application_id: applicationId });
    const before = await registerSnapshot(broker);

    const response = await broker.request("PATCH", `/v1/service-accounts/${account.id}`, { body });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("update turns workload into supplier and back", async () => {
    const account = await createServiceAccount(broker, { application_id: applicationId });

    const toSupplier = await broker.request("PATCH", `/v1/service-accounts/${account.id}`, { body: { kind: "supplier", supplier: SUPPLIER } });
    const keepsSupplier = await broker.request("PATCH", `/v1/service-accounts/${account.id}`, { body: { kind: "workload" } });
    const toWorkload = await broker.request("PATCH", `/v1/service-accounts/${account.id}`, { body: { kind: "workload", supplier: null } });

    expect(toSupplier.status).toBe(200);
    expect(toSupplier.json.supplier).toEqual(SUPPLIER);
    expectProblem(keepsSupplier, 400, "validation_failed");
    expect(invalidParamNames(keepsSupplier)).toEqual(["supplier"]);
    expect(toWorkload.status).toBe(200);
    expect(toWorkload.json.supplier).toBeNull();
  });

  it("update changes only given fields", async () => {
    const account = await createServiceAccount(broker, { application_id: applicationId, allowed_scopes: ["orders:read"] });

    const response = await broker.request("PATCH", `/v1/service-accounts/${account.id}`, { body: { max_token_ttl: 300 } });

    expect(response.status).toBe(200);
    expect(response.json.max_token_ttl).toBe(300);
    expect(response.json.allowed_scopes).toEqual(["orders:read"]);
    expect(response.json.expires_at).toBe(FUTURE_EXPIRY);
  });

  it("list filters by kind and status", async () => {
    const application = await createApplication(broker);
    const ci = await createServiceAccount(broker, { application_id: application.id, kind: "ci" });
    const suspended = await createServiceAccount(broker, { application_id: application.id });
    await broker.request("POST", `/v1/service-accounts/${suspended.id}/suspend`);

    const byKind = await broker.request("GET", `/v1/service-accounts?application_id=${application.id}&kind=ci`);
    const byStatus = await broker.request("GET", `/v1/service-accounts?application_id=${application.id}&status=suspended`);

    expect(byKind.json.items.map((item: { id: string }) => item.id)).toEqual([ci.id]);
    expect(byStatus.json.items.map((item: { id: string }) => item.id)).toEqual([suspended.id]);
  });

  it.each([
    { case: "kind unknown", query: "kind=robot", field: "kind" },
    { case: "status unknown", query: "status=paused", field: "status" },
    { case: "application_id malformed", query: "application_id=orders", field: "application_id" },
    { case: "expiring_before malformed", query: "expiring_before=soon", field: "expiring_before" },
    { case: "review_overdue not boolean", query: "review_overdue=yes", field: "review_overdue" },
    { case: "unknown parameter", query: "name=orders", field: "name" },
  ])("list rejects $case", async ({ query, field }) => {
    const response = await broker.request("GET", `/v1/service-accounts?${query}`);

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
  });

  it("read of unknown account returns 404", async () => {
    const response = await broker.request("GET", "/v1/service-accounts/sa_0123456789abcdef01234567");

    expectProblem(response, 404, "not_found");
  });
});
