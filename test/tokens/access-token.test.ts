import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";
import { createWorkload, issueToken, requestToken, type Workload } from "./oauth-fixtures.js";

const TEST_NOW_SECONDS = Date.parse(TEST_NOW) / 1000;

describe("access token", () => {
  let broker: TestBroker;
  let workload: Workload;

  beforeAll(async () => {
    broker = await startTestBroker();
    workload = await createWorkload(broker, {
      allowed_audiences: ["https://db.orders.example.com"],
      allowed_scopes: ["orders.read", "orders.write"],
    });
  });

  afterAll(async () => {
    await broker.close();
  });

  it("header carries typ, alg and published kid", async () => {
    const { access_token: token } = await issueToken(broker, workload);

    const header = decodeProtectedHeader(token);
    const jwks = (await broker.request("GET", "/.well-known/jwks.json", { token: null })).json as { keys: { kid: string }[] };
    expect(header.typ).toBe("at+jwt");
    expect(header.alg).toBe("ES256");
    expect(jwks.keys.map((key) => key.kid)).toContain(header.kid);
  });

  it("claims follow RFC 9068", async () => {
    const response = await issueToken(broker, workload, { audience: "https://db.orders.example.com", scope: "orders.read" });

    const claims = decodeJwt(response.access_token);
    expect(claims.iss).toBe(broker.deps.config.issuer);
    expect(claims.sub).toBe(workload.accountId);
    expect(claims.aud).toBe("https://db.orders.example.com");
    expect(claims["client_id"]).toBe(workload.accountId);
    expect(claims["scope"]).toBe("orders.read");
    expect(claims.iat).toBe(TEST_NOW_SECONDS);
    expect(claims.exp).toBe(TEST_NOW_SECONDS + response.expires_in);
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(claims["lease_id"]).toBe(response.lease_id);
  });

  it("verifies against the published JWKS", async () => {
    const { access_token: token } = await issueToken(broker, workload);
    const jwks = createLocalJWKSet((await broker.request("GET", "/.well-known/jwks.json", { token: null })).json);

    const { payload } = await jwtVerify(token, jwks, {
      issuer: broker.deps.config.issuer,
      audience: broker.deps.config.issuer,
      typ: "at+jwt",
      currentDate: broker.clock.now(),
      algorithms: ["ES256"],
    });

    expect(payload.sub).toBe(workload.accountId);
  });

  it("default audience is the broker and scope all allowed", async () => {
    const response = await issueToken(broker, workload);

    const claims = decodeJwt(response.access_token);
    expect(claims.aud).toBe(broker.deps.config.issuer);
    expect(claims["scope"]).toBe("orders.read orders.write");
    expect(response.scope).toBe("orders.read orders.write");
  });

  it("repeated scope collapsed", async () => {
    const response = await issueToken(broker, workload, { scope: "orders.read  orders.read" });

    expect(response.scope).toBe("orders.read");
  });

  it("each token has its own jti", async () => {
    const first = await issueToken(broker, workload);
    const second = await issueToken(broker, workload);

    expect(decodeJwt(first.access_token).jti).not.toBe(decodeJwt(second.access_token).jti);
    expect(first.lease_id).not.toBe(second.lease_id);
  });

  it.each([
    { case: "requested ttl", fields: {}, ttl: "120", expected: 120 },
    { case: "account max_token_ttl", fields: { max_token_ttl: 300 }, ttl: "600", expected: 300 },
    { case: "account max_token_ttl without ttl", fields: { max_token_ttl: 300 }, ttl: undefined, expected: 300 },
    { case: "global cap", fields: { max_token_ttl: 43_200 }, ttl: "3600", expected: 900 },
    { case: "global cap without ttl", fields: { max_token_ttl: 43_200 }, ttl: undefined, expected: 900 },
    { case: "account expiry", fields: { expires_at: new Date(Date.parse(TEST_NOW) + 200_000).toISOString() }, ttl: "600", expected: 200 },
  ])("TTL capped by $case", async ({ fields, ttl, expected }) => {
    const account = await createWorkload(broker, fields);

    const response = await issueToken(broker, account, ttl ? { ttl } : {});

    const claims = decodeJwt(response.access_token);
    const lease = await broker.request("GET", `/v1/leases/${response.lease_id}`);
    expect(response.expires_in).toBe(expected);
    expect(claims.exp! - claims.iat!).toBe(expected);
    expect(lease.json.expires_at).toBe(new Date((TEST_NOW_SECONDS + expected) * 1000).toISOString());
  });

  it("lease max expiry capped by account expiry", async () => {
    const expiresAt = new Date(Date.parse(TEST_NOW) + 200_000).toISOString();
    const account = await createWorkload(broker, { expires_at: expiresAt });

    const response = await issueToken(broker, account);

    const lease = await broker.request("GET", `/v1/leases/${response.lease_id}`);
    expect(lease.json.max_expires_at).toBe(expiresAt);
  });

  it("account expiring within a second rejected", async () => {
    const account = await createWorkload(broker, { expires_at: new Date(Date.parse(TEST_NOW) + 500).toISOString() });

    const response = await requestToken(broker, account);

    expect(response.status).toBe(400);
    expect(response.json.error).toBe("invalid_grant");
    expect(response.json.error_description).toMatch(/no time is left/);
  });
});

describe("access token with a smaller global cap", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker({ config: { tokenTtlCap: 120, leaseMaxTtl: 600 } });
  });

  afterAll(async () => {
    await broker.close();
  });

  it.each([
    { case: "no ttl", ttl: undefined, expected: 120 },
    { case: "larger ttl", ttl: "900", expected: 120 },
    { case: "smaller ttl", ttl: "30", expected: 30 },
  ])("TTL with $case", async ({ ttl, expected }) => {
    const workload = await createWorkload(broker, { max_token_ttl: 3600 });

    const response = await issueToken(broker, workload, ttl ? { ttl } : {});

    expect(response.expires_in).toBe(expected);
    const lease = await broker.request("GET", `/v1/leases/${response.lease_id}`);
    expect(lease.json.max_expires_at).toBe(new Date(Date.parse(TEST_NOW) + 600_000).toISOString());
  });
});
