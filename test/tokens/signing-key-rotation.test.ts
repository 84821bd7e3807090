import { randomBytes, randomUUID } from "node:crypto";
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, importJWK, type JSONWebKeySet, jwtVerify, SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MasterKeyRing } from "../../broker/crypto/master-key-ring.js";
import { JWT_BEARER_ASSERTION_TYPE } from "../../broker/tokens/client-assertion.js";
import { SigningKeyRing } from "../../broker/tokens/signing-key-ring.js";
import {
  addWorkloadKey,
  auditEvents,
  createServiceAccount,
  expectProblem,
  generateJwkPair,
  invalidParamNames,
  rowCount,
  tokenIdOf,
} from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker, type TestResponse } from "../support/test-broker.js";

const SECOND = 1000;
/** Retention of a superseded key with the harness settings: token TTL cap 900 s plus clock skew 30 s. */
const RETENTION_SECONDS = 930;

describe("signing key lifecycle", () => {
  let broker: TestBroker;
  let issueToken: () => Promise<string>;

  beforeEach(async () => {
    broker = await startTestBroker();
    issueToken = await workloadTokenIssuer(broker);
  });

  afterEach(async () => {
    await broker.close();
  });

  function rotate(body?: unknown, token = broker.tokens.admin): Promise<TestResponse> {
    return broker.request("POST", "/v1/signing-keys/rotate", { token, ...(body === undefined ? {} : { body }) });
  }

  async function publishedKids(): Promise<string[]> {
    const response = await broker.request("GET", "/.well-known/jwks.json", { token: null });
    return (response.json.keys as { kid: string }[]).map((key) => key.kid);
  }

  async function listedKeys(): Promise<Record<string, unknown>[]> {
    const response = await broker.request("GET", "/v1/signing-keys", { token: broker.tokens.auditor });
    expect(response.status, response.text).toBe(200);
    return response.json.items;
  }

  async function signingKid(): Promise<string> {
    return decodeProtectedHeader(await issueToken()).kid!;
  }

  /** Verifies an access token against the broker's JWKS at the harness clock, as a resource server would. */
  async function verifyWithJwks(token: string) {
    const jwks = (await broker.request("GET", "/.well-known/jwks.json", { token: null })).json as JSONWebKeySet;
    return jwtVerify(token, createLocalJWKSet(jwks), {
      issuer: broker.deps.config.issuer,
      typ: "at+jwt",
      currentDate: broker.clock.now(),
      clockTolerance: broker.deps.config.clockSkew,
    });
  }

  it("publishes new key at once", async () => {
    const [initialKid] = await publishedKids();

    const response = await rotate({ publish_delay: 600 });

    expect(response.status, response.text).toBe(201);
    expect(response.json).toEqual({
      kid: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      alg: "ES256",
      created_at: TEST_NOW,
      activates_at: new Date(Date.parse(TEST_NOW) + 600 * SECOND).toISOString(),
      state: "pending",
      published_until: null,
    });
    expect(await publishedKids()).toEqual([initialKid, response.json.kid]);
  });

  it("signs with old key until activation", async () => {
    const [initialKid] = await publishedKids();
    const newKid = (await rotate({ publish_delay: 600 })).json.kid;

    expect(await signingKid()).toBe(initialKid);
    broker.clock.advance(599 * SECOND);
    expect(await signingKid()).toBe(initialKid);
    broker.clock.advance(1 * SECOND);
    expect(await signingKid()).toBe(newKid);
    expect(await publishedKids()).toEqual([initialKid, newKid]);
  });

  it("lists computed key states", async () => {
    const [initialKid] = await publishedKids();
    const newKid = (await rotate({ publish_delay: 600 })).json.kid;
    const activation = Date.parse(TEST_NOW) + 600 * SECOND;

    expect((await listedKeys()).map((key) => [key["kid"], key["state"], key["published_until"]])).toEqual([
      [initialKid, "active", null],
      [newKid, "pending", null],
    ]);

    broker.clock.set(new Date(activation));
    expect((await listedKeys()).map((key) => [key["kid"], key["state"], key["published_until"]])).toEqual([
      [initialKid, "retired", new Date(activation + RETENTION_SECONDS * SECOND).toISOString()],
      [newKid, "active", null],
    ]);
  });

  it("keeps old key published through retention", async () => {
    const [initialKid] = await publishedKids();
    const newKid = (await rotate({ publish_delay: 600 })).json.kid;
    const activation = Date.parse(TEST_NOW) + 600 * SECOND;

    broker.clock.set(new Date(activation + (RETENTION_SECONDS - 1) * SECOND));
    expect(await publishedKids()).toEqual([initialKid, newKid]);

    broker.clock.set(new Date(activation + RETENTION_SECONDS * SECOND));
    expect(await publishedKids()).toEqual([newKid]);
    expect((await listedKeys()).map((key) => key["state"])).toEqual(["retired", "active"]);
  });

  it("old key's token verifies throughout its lifetime", async () => {
    const [initialKid] = await publishedKids();
    await rotate({ publish_delay: 600 });
    // The last token the old key signs: one second before the new key activates.
    broker.clock.advance(599 * SECOND);
    const token = await issueToken();
    const { iat, exp } = decodeJwt(token);
    expect(decodeProtectedHeader(token).kid).toBe(initialKid);
    expect(exp! - iat!).toBe(broker.deps.config.tokenTtlCap);

    const skew = broker.deps.config.clockSkew;
    for (let second = iat!; second <= exp! + skew - 1; second += 60) {
      broker.clock.set(new Date(second * SECOND));
      await expect(verifyWithJwks(token), `at iat + ${second - iat!} s`).resolves.toBeDefined();
    }
    broker.clock.set(new Date((exp! + skew - 1) * SECOND));
    await expect(verifyWithJwks(token)).resolves.toBeDefined();
    expect(await publishedKids()).toContain(initialKid);
  });

  it("publish_delay 0 activates at once", async () => {
    const [initialKid] = await publishedKids();

    const response = await rotate({ publish_delay: 0 });

    expect(response.status, response.text).toBe(201);
    expect(response.json.state).toBe("active");
    expect(await signingKid()).toBe(response.json.kid);
    const [retired] = await listedKeys();
    expect(retired).toMatchObject({
      kid: initialKid,
      state: "retired",
      published_until: new Date(Date.parse(TEST_NOW) + RETENTION_SECONDS * SECOND).toISOString(),
    });
  });

});

describe("signing key rotation requests", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterAll(async () => {
    await broker.close();
  });

  function rotate(body?: unknown, token = broker.tokens.admin): Promise<TestResponse> {
    return broker.request("POST", "/v1/signing-keys/rotate", { token, ...(body === undefined ? {} : { body }) });
  }

  async function listedKeys(): Promise<Record<string, unknown>[]> {
    const response = await broker.request("GET", "/v1/signing-keys", { token: broker.tokens.auditor });
    expect(response.status, response.text).toBe(200);
    return response.json.items;
  }

  it("rotation is audited", async () => {
    const kid = (await rotate({ publish_delay: 60 })).json.kid;

    const event = (await auditEvents(broker, "action=signing_key.rotate")).find((candidate) => candidate.target === kid);

    expect(event).toMatchObject({
      actor: `operator:${tokenIdOf(broker.tokens.admin)}`,
      target: kid,
      outcome: "success",
      details: { alg: "ES256", activates_at: new Date(Date.parse(TEST_NOW) + 60 * SECOND).toISOString() },
    });
  });

  it.each([
    { case: "negative delay", body: { publish_delay: -1 }, param: "publish_delay" },
    { case: "delay over one day", body: { publish_delay: 86_401 }, param: "publish_delay" },
    { case: "fractional delay", body: { publish_delay: 1.5 }, param: "publish_delay" },
    { case: "delay as a string", body: { publish_delay: "60" }, param: "publish_delay" },
    { case: "null delay", body: { publish_delay: null }, param: "publish_delay" },
    { case: "unknown field", body: { delay: 60 }, param: "delay" },
    { case: "array body", body: [60], param: null },
  ])("rejects $case", async ({ body, param }) => {
    const keysBefore = await rowCount(broker, "signing_keys");

    const response = await rotate(body);

    expectProblem(response, 400, "validation_failed");
    if (param) {
      expect(invalidParamNames(response)).toContain(param);
    }
    expect(await rowCount(broker, "signing_keys")).toBe(keysBefore);
  });

  it.each([
    { case: "malformed JSON", options: { rawBody: "{publish_delay: 60", headers: { "content-type": "application/json" } }, status: 400, code: "invalid_json" },
    { case: "form body", options: { rawBody: "publish_delay=60", headers: { "content-type": "application/x-www-form-urlencoded" } }, status: 415, code: "unsupported_media_type" },
    { case: "auditor role", options: { token: "auditor" }, status: 403, code: "forbidden" },
    { case: "operator role", options: { token: "operator" }, status: 403, code: "forbidden" },
    { case: "no token", options: { token: null }, status: 401, code: "unauthenticated" },
  ])("rejects rotation with $case", async ({ options, status, code }) => {
    const keysBefore = await rowCount(broker, "signing_keys");
    let token: string | null = broker.tokens.admin;
    if (options.token === null) {
      token = null;
    } else if (options.token) {
      token = broker.tokens[options.token as "auditor" | "operator"];
    }

    const response = await broker.request("POST", "/v1/signing-keys/rotate", { ...options, token });

    expectProblem(response, status, code);
    expect(await rowCount(broker, "signing_keys")).toBe(keysBefore);
  });

  it("listing shows no private material", async () => {
    await rotate({ publish_delay: 60 });
    const stored = await broker.query<{ private_key_ciphertext: string }>("select private_key_ciphertext from signing_keys");

    const response = await broker.request("GET", "/v1/signing-keys", { token: broker.tokens.auditor });

    expect(response.status).toBe(200);
    for (const item of response.json.items) {
      expect(Object.keys(item).sort()).toEqual(["activates_at", "alg", "created_at", "kid", "published_until", "state"]);
    }
    for (const row of stored) {
      expect(response.text).not.toContain(row.private_key_ciphertext);
    }
    const jwks = await broker.request("GET", "/.well-known/jwks.json", { token: null });
    for (const key of jwks.json.keys) {
      expect(key).not.toHaveProperty("d");
    }
  });

  it("listing rejects unknown query parameters", async () => {
    const response = await broker.request("GET", "/v1/signing-keys?state=active", { token: broker.tokens.auditor });

    expectProblem(response, 400, "validation_failed");
  });

  it("listing shows key added by another replica", async () => {
    // Fill this process's key cache first, then add a key through another replica's ring.
    await broker.request("GET", "/.well-known/jwks.json", { token: null });
    const otherReplica = new SigningKeyRing(broker.deps.db, broker.clock, new MasterKeyRing([randomBytes(32)], "environment"), RETENTION_SECONDS);
    const kid = await broker.deps.db.transaction((tx) => otherReplica.addKey(tx, "ES256", new Date(Date.parse(TEST_NOW) + 60 * SECOND)));

    const keys = await listedKeys();

    expect(keys.map((key) => key["kid"])).toContain(kid);
  });
});

describe("signing key rotation defaults", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker({ config: { keyPublishDelay: 120 } });
  });

  afterAll(async () => {
    await broker.close();
  });

  it.each([
    { case: "no body", options: {} },
    { case: "empty object", options: { body: {} } },
  ])("uses BROKER_KEY_PUBLISH_DELAY with $case", async ({ options }) => {
    const response = await broker.request("POST", "/v1/signing-keys/rotate", options);

    expect(response.status, response.text).toBe(201);
    expect(response.json.activates_at).toBe(new Date(Date.parse(TEST_NOW) + 120 * SECOND).toISOString());
    expect(response.json.state).toBe("pending");
  });
});

/**
 * Registers a service account with an EC key and returns a function that obtains an
 * access token for it with a client_credentials grant and a private_key_jwt assertion.
 */
async function workloadTokenIssuer(broker: TestBroker): Promise<() => Promise<string>> {
  const account = await createServiceAccount(broker);
  const pair = generateJwkPair("ec-p256");
  const { kid } = await addWorkloadKey(broker, account.id, pair.publicJwk);
  const privateKey = await importJWK(pair.privateJwk, "ES256");

  return async function issueToken() {
    const issuedAt = Math.floor(broker.clock.now().getTime() / SECOND);
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid })
      .setIssuer(account.id)
      .setSubject(account.id)
      .setAudience(broker.deps.config.issuer)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + 60)
      .setJti(randomUUID())
      .sign(privateKey);
    const form = new URLSearchParams({
      grant_type: "client_credentials",
      client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
      client_assertion: assertion,
    });
    const response = await broker.request("POST", "/v1/token", {
      token: null,
      rawBody: form.toString(),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    if (response.status !== 200) {
      throw new Error(`token request failed with ${response.status}: ${response.text}`);
    }
    return response.json.access_token as string;
  };
}
