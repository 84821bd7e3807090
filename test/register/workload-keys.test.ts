import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addWorkloadKey,
  createServiceAccount,
  expectProblem,
  generateJwkPair,
  invalidParamNames,
  publicJwk,
  registerSnapshot,
} from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

type Jwk = Record<string, unknown>;

function exportPublic(pair: { publicKey: { export(options: { format: "jwk" }): unknown } }): Jwk {
  return pair.publicKey.export({ format: "jwk" }) as Jwk;
}

describe("workload keys", () => {
  let broker: TestBroker;
  let accountId: string;
  const ec = generateJwkPair("ec-p256");
  const ed25519 = generateJwkPair("ed25519");
  const rsa = generateJwkPair("rsa-2048");

  beforeAll(async () => {
    broker = await startTestBroker();
    accountId = (await createServiceAccount(broker)).id;
  });

  afterAll(async () => {
    await broker.close();
  });

  function addKey(jwk: unknown, account = accountId) {
    return broker.request("POST", `/v1/service-accounts/${account}/keys`, { body: { jwk } });
  }

  it.each([
    { case: "EC P-256", jwk: () => publicJwk("ec-p256"), alg: "ES256" },
    { case: "EC P-256 with ES256", jwk: () => ({ ...publicJwk("ec-p256"), alg: "ES256", use: "sig" }), alg: "ES256" },
    { case: "Ed25519", jwk: () => publicJwk("ed25519"), alg: "EdDSA" },
    { case: "Ed25519 with Ed25519 alg", jwk: () => ({ ...publicJwk("ed25519"), alg: "Ed25519" }), alg: "Ed25519" },
    { case: "RSA 2048", jwk: () => publicJwk("rsa-2048"), alg: "RS256" },
    { case: "RSA 2048 with PS384", jwk: () => ({ ...publicJwk("rsa-2048"), alg: "PS384" }), alg: "PS384" },
    { case: "RSA 3072", jwk: () => exportPublic(generateKeyPairSync("rsa", { modulusLength: 3072 })), alg: "RS256" },
  ])("accepts $case", async ({ jwk, alg }) => {
    const key = jwk();

    const response = await addKey(key);

    expect(response.status, response.text).toBe(201);
    expect(response.json.alg).toBe(alg);
    expect(response.json.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(response.json.jwk.kid).toBe(response.json.kid);
  });

  it("keeps given kid", async () => {
    const response = await addKey({ ...publicJwk(), kid: "orders-api-2026-06" });

    expect(response.status).toBe(201);
    expect(response.json.kid).toBe("orders-api-2026-06");
  });

  it.each([
    { case: "EC private key", jwk: () => ec.privateJwk, field: "jwk" },
    { case: "Ed25519 private key", jwk: () => ed25519.privateJwk, field: "jwk" },
    { case: "RSA private key", jwk: () => rsa.privateJwk, field: "jwk" },
    ...["d", "p", "q", "dp", "dq", "qi", "oth", "k"].map((member) => ({
      case: `public RSA key with ${member}`,
      jwk: () => ({ ...rsa.publicJwk, [member]: "AQAB" }),
      field: "jwk",
    })),
    { case: "HMAC oct key", jwk: () => ({ kty: "oct", k: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", alg: "HS256" }), field: "jwk" },
    { case: "oct key without k", jwk: () => ({ kty: "oct", alg: "HS256" }), field: "jwk.kty" },
    { case: "RSA 1024", jwk: () => exportPublic(generateKeyPairSync("rsa", { modulusLength: 1024 })), field: "jwk.n" },
    { case: "RSA 2040", jwk: () => exportPublic(generateKeyPairSync("rsa", { modulusLength: 2040 })), field: "jwk.n" },
    { case: "RSA without n", jwk: () => ({ kty: "RSA", e: "AQAB" }), field: "jwk.n" },
    { case: "EC P-384", jwk: () => exportPublic(generateKeyPairSync("ec", { namedCurve: "P-384" })), field: "jwk.kty" },
    { case: "EC secp256k1", jwk: () => exportPublic(generateKeyPairSync("ec", { namedCurve: "secp256k1" })), field: "jwk.kty" },
    { case: "X25519", jwk: () => exportPublic(generateKeyPairSync("x25519")), field: "jwk.kty" },
    { case: "Ed448", jwk: () => exportPublic(generateKeyPairSync("ed448")), field: "jwk.kty" },
    { case: "missing kty", jwk: () => ({ x: ec.publicJwk["x"], y: ec.publicJwk["y"], crv: "P-256" }), field: "jwk.kty" },
    { case: "EC key with RS256", jwk: () => ({ ...ec.publicJwk, alg: "RS256" }), field: "jwk.alg" },
    { case: "EC key with ES384", jwk: () => ({ ...ec.publicJwk, alg: "ES384" }), field: "jwk.alg" },
    { case: "RSA key with ES256", jwk: () => ({ ...rsa.publicJwk, alg: "ES256" }), field: "jwk.alg" },
    { case: "RSA key with HS256", jwk: () => ({ ...rsa.publicJwk, alg: "HS256" }), field: "jwk.alg" },
    { case: "Ed25519 key with ES256", jwk: () => ({ ...ed25519.publicJwk, alg: "ES256" }), field: "jwk.alg" },
    { case: "alg none", jwk: () => ({ ...ec.publicJwk, alg: "none" }), field: "jwk.alg" },
    { case: "use enc", jwk: () => ({ ...ec.publicJwk, use: "enc" }), field: "jwk.use" },
    { case: "EC point off curve", jwk: () => ({ ...ec.publicJwk, y: ec.publicJwk["x"] }), field: "jwk" },
    { case: "EC x not base64url", jwk: () => ({ ...ec.publicJwk, x: "not base64!" }), field: "jwk" },
    { case: "empty kid", jwk: () => ({ ...ec.publicJwk, kid: "" }), field: "jwk.kid" },
    { case: "numeric kid", jwk: () => ({ ...ec.publicJwk, kid: 7 }), field: "jwk.kid" },
    { case: "kid over 256 characters", jwk: () => ({ ...ec.publicJwk, kid: "k".repeat(257) }), field: "jwk.kid" },
    { case: "jwk as string", jwk: () => JSON.stringify(ec.publicJwk), field: "jwk" },
    { case: "jwk as list", jwk: () => [ec.publicJwk], field: "jwk" },
    { case: "jwk missing", jwk: () => undefined, field: "jwk" },
  ])("rejects $case", async ({ jwk, field }) => {
    const before = await registerSnapshot(broker);

    const response = await addKey(jwk());

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("private key rejection never echoes d", async () => {
    const response = await addKey(ec.privateJwk);

    expect(response.text).not.toContain(String(ec.privateJwk["d"]));
  });

  it("rejects same key twice with 409", async () => {
    const jwk = publicJwk();
    await addWorkloadKey(broker, accountId, jwk);
    const before = await registerSnapshot(broker);

    const response = await addKey(jwk);

    expectProblem(response, 409, "conflict");
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("rejects duplicate kid with 409", async () => {
    await addWorkloadKey(broker, accountId, { ...publicJwk(), kid: "shared-kid" });
    const before = await registerSnapshot(broker);

    const response = await addKey({ ...publicJwk("ed25519"), kid: "shared-kid" });

    expectProblem(response, 409, "conflict");
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("allows same kid on another account", async () => {
    const other = await createServiceAccount(broker);
    await addWorkloadKey(broker, accountId, { ...publicJwk(), kid: "per-account-kid" });

    const response = await addKey({ ...publicJwk(), kid: "per-account-kid" }, other.id);

    expect(response.status).toBe(201);
  });

  it("rejects key for unknown account with 404", async () => {
    const response = await addKey(publicJwk(), "sa_0123456789abcdef01234567");

    expectProblem(response, 404, "not_found");
  });

  it("lists and removes key", async () => {
    const account = await createServiceAccount(broker);
    const key = await addWorkloadKey(broker, account.id);

    const listed = await broker.request("GET", `/v1/service-accounts/${account.id}/keys`);
    const removed = await broker.request("DELETE", `/v1/service-accounts/${account.id}/keys/${key.kid}`);
    const removedAgain = await broker.request("DELETE", `/v1/service-accounts/${account.id}/keys/${key.kid}`);
    const listedAfter = await broker.request("GET", `/v1/service-accounts/${account.id}/keys`);

    expect(listed.json.items.map((item: { kid: string }) => item.kid)).toEqual([key.kid]);
    expect(removed.status).toBe(204);
    expectProblem(removedAgain, 404, "not_found");
    expect(listedAfter.json.items).toEqual([]);
  });
});
