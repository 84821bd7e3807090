import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createServiceAccount,
  createTrustedIssuer,
  expectProblem,
  publicJwk,
  registerSnapshot,
} from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";

const DAY_MS = 24 * 60 * 60 * 1000;

describe("service account status", () => {
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

  function changeStatus(id: string, change: string, body?: unknown) {
    return broker.request("POST", `/v1/service-accounts/${id}/${change}`, { body });
  }

  it("suspend records reason", async () => {
    const account = await createServiceAccount(broker);

    const response = await changeStatus(account.id, "suspend", { reason: "suspected key leak" });

    expect(response.status).toBe(200);
    expect(response.json.status).toBe("suspended");
    expect(response.json.status_reason).toBe("suspected key leak");
  });

  it("suspend without body", async () => {
    const account = await createServiceAccount(broker);

    const response = await changeStatus(account.id, "suspend");

    expect(response.status).toBe(200);
    expect(response.json.status).toBe("suspended");
    expect(response.json.status_reason).toBeNull();
  });

  it("activate suspended account", async () => {
    const account = await createServiceAccount(broker);
    await changeStatus(account.id, "suspend");

    const response = await changeStatus(account.id, "activate", { reason: "key rotated" });

    expect(response.status).toBe(200);
    expect(response.json.status).toBe("active");
  });

  it.each(["active", "suspended"])("decommission %s account", async (status) => {
    const account = await createServiceAccount(broker);
    if (status === "suspended") {
      await changeStatus(account.id, "suspend");
    }

    const response = await changeStatus(account.id, "decommission");

    expect(response.status).toBe(200);
    expect(response.json.status).toBe("decommissioned");
  });

  it.each([
    { case: "suspend of suspended account", setup: ["suspend"], change: "suspend" },
    { case: "activate of active account", setup: [], change: "activate" },
    { case: "activate of decommissioned account", setup: ["decommission"], change: "activate" },
    { case: "suspend of decommissioned account", setup: ["decommission"], change: "suspend" },
    { case: "decommission of decommissioned account", setup: ["decommission"], change: "decommission" },
  ])("rejects $case with 409", async ({ setup, change }) => {
    const account = await createServiceAccount(broker);
    for (const step of setup) {
      await changeStatus(account.id, step);
    }
    const before = await registerSnapshot(broker);

    const response = await changeStatus(account.id, change);

    expectProblem(response, 409, "invalid_state");
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("activate rejected after expiry", async () => {
    const expiresAt = new Date(broker.clock.now().getTime() + DAY_MS).toISOString();
    const account = await createServiceAccount(broker, { expires_at: expiresAt });
    await changeStatus(account.id, "suspend");
    broker.clock.advance(2 * DAY_MS);
    const before = await registerSnapshot(broker);

    const response = await changeStatus(account.id, "activate");

    expectProblem(response, 409, "invalid_state");
    expect(response.json.detail).toContain("expires_at");
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("activate after expiry extended", async () => {
    const expiresAt = new Date(broker.clock.now().getTime() + DAY_MS).toISOString();
    const account = await createServiceAccount(broker, { expires_at: expiresAt });
    await changeStatus(account.id, "suspend");
    broker.clock.advance(2 * DAY_MS);
    const extended = await broker.request("PATCH", `/v1/service-accounts/${account.id}`, { body: { expires_at: "2027-01-01T00:00:00Z" } });

    const response = await changeStatus(account.id, "activate");

    expect(extended.status).toBe(200);
    expect(response.status).toBe(200);
  });

  it.each([
    { case: "reason empty", body: { reason: "" }, field: "reason" },
    { case: "reason as number", body: { reason: 7 }, field: "reason" },
    { case: "reason over 1000 characters", body: { reason: "x".repeat(1001) }, field: "reason" },
    { case: "unknown field", body: { until: "2027-01-01T00:00:00Z" }, field: "until" },
  ])("suspend rejects $case", async ({ body, field }) => {
    const account = await createServiceAccount(broker);
    const before = await registerSnapshot(broker);

    const response = await changeStatus(account.id, "suspend", body);

    expectProblem(response, 400, "validation_failed");
    expect(response.json.invalid_params.map((param: { name: string }) => param.name)).toEqual([field]);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  describe("decommissioned account", () => {
    let accountId: string;
    let issuer: string;

    beforeAll(async () => {
      accountId = (await createServiceAccount(broker)).id;
      issuer = (await createTrustedIssuer(broker)).issuer;
      await changeStatus(accountId, "decommission");
    });

    it.each([
      { case: "update", method: "PATCH", suffix: "", body: () => ({ technical_owner: "bob@example.com" }) },
      { case: "key add", method: "POST", suffix: "/keys", body: () => ({ jwk: publicJwk() }) },
      {
        case: "federated subject add",
        method: "POST",
        suffix: "/federated-subjects",
        body: () => ({ issuer, subject: "system:serviceaccount:orders:api" }),
      },
    ])("rejects $case with 409", async ({ method, suffix, body }) => {
      const before = await registerSnapshot(broker);

      const response = await broker.request(method, `/v1/service-accounts/${accountId}${suffix}`, { body: body() });

      expectProblem(response, 409, "invalid_state");
      expect(await registerSnapshot(broker)).toEqual(before);
    });
  });
});
