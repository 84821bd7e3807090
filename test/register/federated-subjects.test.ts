import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addFederatedSubject,
  createServiceAccount,
  createTrustedIssuer,
  expectProblem,
  invalidParamNames,
  registerSnapshot,
} from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

describe("federated subjects", () => {
  let broker: TestBroker;
  let accountId: string;
  let issuer: string;

  beforeAll(async () => {
    broker = await startTestBroker();
    accountId = (await createServiceAccount(broker)).id;
    issuer = (await createTrustedIssuer(broker)).issuer;
  });

  afterAll(async () => {
    await broker.close();
  });

  function addSubject(body: unknown, account = accountId) {
    return broker.request("POST", `/v1/service-accounts/${account}/federated-subjects`, { body });
  }

  it("add binds subject with claims", async () => {
    const response = await addSubject({ issuer, subject: "repo:example/orders:environment:prod", claims: { repository_id: "4242" } });

    expect(response.status).toBe(201);
    expect(response.json.id).toMatch(/^fed_[0-9a-f]{24}$/);
    expect(response.json.issuer).toBe(issuer);
    expect(response.json.claims).toEqual({ repository_id: "4242" });
  });

  it.each([
    { case: "unregistered issuer", body: () => ({ issuer: "https://unknown.example.com", subject: "s" }), field: "issuer" },
    { case: "issuer missing", body: () => ({ subject: "s" }), field: "issuer" },
    { case: "subject missing", body: () => ({ issuer }), field: "subject" },
    { case: "subject empty", body: () => ({ issuer, subject: "" }), field: "subject" },
    { case: "subject over 512 characters", body: () => ({ issuer, subject: "s".repeat(513) }), field: "subject" },
    { case: "claim name with space", body: () => ({ issuer, subject: "s", claims: { "job workflow": "x" } }), field: "claims.job workflow" },
    { case: "claim value as number", body: () => ({ issuer, subject: "s", claims: { repository_id: 4242 } }), field: "claims.repository_id" },
    { case: "claim value empty", body: () => ({ issuer, subject: "s", claims: { ref: "" } }), field: "claims.ref" },
    { case: "unknown field", body: () => ({ issuer, subject: "s", audience: "sts" }), field: "audience" },
  ])("add rejects $case", async ({ body, field }) => {
    const before = await registerSnapshot(broker);

    const response = await addSubject(body());

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("add rejects same binding with 409", async () => {
    await addSubject({ issuer, subject: "system:serviceaccount:orders:api" });
    const before = await registerSnapshot(broker);

    const response = await addSubject({ issuer, subject: "system:serviceaccount:orders:api" });

    expectProblem(response, 409, "conflict");
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("add rejects unknown account with 404", async () => {
    const response = await addSubject({ issuer, subject: "s" }, "sa_0123456789abcdef01234567");

    expectProblem(response, 404, "not_found");
  });

  it("lists and removes subject", async () => {
    const account = await createServiceAccount(broker);
    const subject = await addFederatedSubject(broker, account.id, issuer);

    const listed = await broker.request("GET", `/v1/service-accounts/${account.id}/federated-subjects`);
    const removed = await broker.request("DELETE", `/v1/service-accounts/${account.id}/federated-subjects/${subject.id}`);
    const removedAgain = await broker.request("DELETE", `/v1/service-accounts/${account.id}/federated-subjects/${subject.id}`);

    expect(listed.json.items.map((item: { id: string }) => item.id)).toEqual([subject.id]);
    expect(listed.json.items[0].issuer).toBe(issuer);
    expect(removed.status).toBe(204);
    expectProblem(removedAgain, 404, "not_found");
  });

  it("remove rejects subject of another account with 404", async () => {
    const owner = await createServiceAccount(broker);
    const subject = await addFederatedSubject(broker, owner.id, issuer);
    const before = await registerSnapshot(broker);

    const response = await broker.request("DELETE", `/v1/service-accounts/${accountId}/federated-subjects/${subject.id}`);

    expectProblem(response, 404, "not_found");
    expect(await registerSnapshot(broker)).toEqual(before);
  });
});
