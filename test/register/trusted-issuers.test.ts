import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addFederatedSubject,
  createServiceAccount,
  createTrustedIssuer,
  expectProblem,
  generateJwkPair,
  invalidParamNames,
  publicJwk,
  registerSnapshot,
  uniqueName,
} from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

describe("trusted issuers", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterAll(async () => {
    await broker.close();
  });

  function issuerUrl(): string {
    return `https://${uniqueName("issuer")}.example.com`;
  }

  it("create with jwks_uri", async () => {
    const issuer = issuerUrl();

    const response = await broker.request("POST", "/v1/trusted-issuers", {
      body: { issuer, jwks_uri: `${issuer}/.well-known/jwks.json`, audiences: ["sts.example.com"] },
    });

    expect(response.status).toBe(201);
    expect(response.json.id).toMatch(/^iss_[0-9a-f]{24}$/);
    expect(response.json.jwks).toBeNull();
    expect(response.json.audiences).toEqual(["sts.example.com"]);
  });

  it("create with inline jwks adds kid", async () => {
    const response = await broker.request("POST", "/v1/trusted-issuers", {
      body: { issuer: issuerUrl(), jwks: { keys: [publicJwk("ec-p256"), publicJwk("rsa-2048")] } },
    });

    expect(response.status).toBe(201);
    expect(response.json.jwks.keys).toHaveLength(2);
    expect(response.json.jwks.keys[0].kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(response.json.jwks_uri).toBeNull();
  });

  it.each([
    "http://localhost:8443/jwks",
    "http://127.0.0.1:8443/jwks",
    "http://[::1]:8443/jwks",
    "https://token.actions.githubusercontent.com/.well-known/jwks",
  ])("accepts jwks_uri %s", async (jwksUri) => {
    const response = await broker.request("POST", "/v1/trusted-issuers", { body: { issuer: issuerUrl(), jwks_uri: jwksUri } });

    expect(response.status, response.text).toBe(201);
  });

  const privateKey = generateJwkPair("ec-p256").privateJwk;

  it.each([
    { case: "issuer missing", body: () => ({ jwks_uri: "https://a.example.com/jwks" }), field: "issuer" },
    { case: "issuer empty", body: () => ({ issuer: "", jwks_uri: "https://a.example.com/jwks" }), field: "issuer" },
    { case: "both jwks and jwks_uri", body: () => ({ issuer: issuerUrl(), jwks: { keys: [publicJwk()] }, jwks_uri: "https://a.example.com/jwks" }), field: "jwks" },
    { case: "neither jwks nor jwks_uri", body: () => ({ issuer: issuerUrl() }), field: "jwks" },
    { case: "jwks_uri over http", body: () => ({ issuer: issuerUrl(), jwks_uri: "http://issuer.example.com/jwks" }), field: "jwks_uri" },
    { case: "jwks_uri on localhost lookalike", body: () => ({ issuer: issuerUrl(), jwks_uri: "http://localhost.example.com/jwks" }), field: "jwks_uri" },
    { case: "jwks_uri on private address", body: () => ({ issuer: issuerUrl(), jwks_uri: "http://10.0.0.8/jwks" }), field: "jwks_uri" },
    { case: "jwks_uri with ftp", body: () => ({ issuer: issuerUrl(), jwks_uri: "ftp://issuer.example.com/jwks" }), field: "jwks_uri" },
    { case: "jwks_uri relative", body: () => ({ issuer: issuerUrl(), jwks_uri: "/jwks" }), field: "jwks_uri" },
    { case: "jwks without keys", body: () => ({ issuer: issuerUrl(), jwks: {} }), field: "jwks.keys" },
    { case: "jwks with empty keys", body: () => ({ issuer: issuerUrl(), jwks: { keys: [] } }), field: "jwks.keys" },
    { case: "jwks with private key", body: () => ({ issuer: issuerUrl(), jwks: { keys: [publicJwk(), privateKey] } }), field: "jwks.keys[1]" },
    { case: "jwks with HMAC key", body: () => ({ issuer: issuerUrl(), jwks: { keys: [{ kty: "oct", k: "c2VjcmV0" }] } }), field: "jwks.keys[0]" },
    { case: "jwks with P-384 key", body: () => ({ issuer: issuerUrl(), jwks: { keys: [{ kty: "EC", crv: "P-384", x: "AA", y: "AA" }] } }), field: "jwks.keys[0].kty" },
    { case: "audiences not a list", body: () => ({ issuer: issuerUrl(), jwks_uri: "https://a.example.com/jwks", audiences: "sts" }), field: "audiences" },
    { case: "unknown field", body: () => ({ issuer: issuerUrl(), jwks_uri: "https://a.example.com/jwks", discovery: true }), field: "discovery" },
  ])("create rejects $case", async ({ body, field }) => {
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/trusted-issuers", { body: body() });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("create rejects duplicate issuer with 409", async () => {
    const existing = await createTrustedIssuer(broker);
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/trusted-issuers", {
      body: { issuer: existing.issuer, jwks_uri: "https://other.example.com/jwks" },
    });

    expectProblem(response, 409, "conflict");
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("delete rejects issuer in use with 409", async () => {
    const issuer = await createTrustedIssuer(broker);
    const account = await createServiceAccount(broker);
    await addFederatedSubject(broker, account.id, issuer.issuer);
    const before = await registerSnapshot(broker);

    const response = await broker.request("DELETE", `/v1/trusted-issuers/${issuer.id}`);

    expectProblem(response, 409, "conflict");
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("delete removes unused issuer", async () => {
    const issuer = await createTrustedIssuer(broker);

    const deleted = await broker.request("DELETE", `/v1/trusted-issuers/${issuer.id}`);
    const read = await broker.request("GET", `/v1/trusted-issuers/${issuer.id}`);

    expect(deleted.status).toBe(204);
    expectProblem(read, 404, "not_found");
  });
});
