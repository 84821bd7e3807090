import { decodeJwt } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createOperatorToken } from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";
import {
  createWorkload,
  expectOAuthRefusal,
  introspectAsAuditor,
  issueToken,
  JWT_BEARER,
  postForm,
  signAssertion,
  signatureOf,
  unsignedJwt,
  withAuditEvents,
  type Workload,
} from "./oauth-fixtures.js";

describe("introspection and revocation", () => {
  let broker: TestBroker;
  let alice: Workload;
  let bob: Workload;

  beforeAll(async () => {
    broker = await startTestBroker();
    alice = await createWorkload(broker, { allowed_scopes: ["orders.read"], allowed_audiences: ["https://db.orders.example.com"] });
    bob = await createWorkload(broker);
  });

  afterAll(async () => {
    await broker.close();
  });

  afterEach(() => {
    broker.clock.set(TEST_NOW);
  });

  /** Calls an OAuth endpoint authenticated by a fresh client assertion of `client`. */
  async function asClient(path: string, client: Workload, params: Record<string, string>) {
    return postForm(broker, path, {
      client_assertion_type: JWT_BEARER,
      client_assertion: await signAssertion(broker, client),
      ...params,
    });
  }

  it("active token introspected by auditor", async () => {
    const token = await issueToken(broker, alice, { audience: "https://db.orders.example.com", scope: "orders.read" });

    const response = await postForm(broker, "/v1/introspect", { token: token.access_token }, { token: broker.tokens.auditor });

    const claims = decodeJwt(token.access_token);
    expect(response.status, response.text).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.json).toEqual({
      active: true,
      token_type: "Bearer",
      scope: "orders.read",
      client_id: alice.accountId,
      sub: alice.accountId,
      aud: "https://db.orders.example.com",
      iss: broker.deps.config.issuer,
      exp: claims.exp,
      iat: claims.iat,
      nbf: claims.nbf,
      jti: claims.jti,
      lease_id: token.lease_id,
    });
  });

  it("client introspects own token", async () => {
    const token = await issueToken(broker, alice);

    const response = await asClient("/v1/introspect", alice, { token: token.access_token });

    expect(response.status, response.text).toBe(200);
    expect(response.json.active).toBe(true);
    expect(response.json.client_id).toBe(alice.accountId);
  });

  it("client sees another's token inactive", async () => {
    const token = await issueToken(broker, alice);

    const response = await asClient("/v1/introspect", bob, { token: token.access_token });

    expect(response.status, response.text).toBe(200);
    expect(response.json).toEqual({ active: false });
  });

  it.each([
    { case: "no authentication", bearer: null, check: /client authentication is required/ },
    { case: "unknown operator token", bearer: `sbo_tok_0123456789abcdef01234567.${"Q".repeat(43)}`, check: /operator token is invalid/ },
    { case: "access token as bearer", bearer: "access token", check: /operator token is invalid/ },
  ])("introspection rejects $case", async ({ bearer, check }) => {
    const access = (await issueToken(broker, alice)).access_token;
    const token = bearer === "access token" ? access : bearer;

    const result = await withAuditEvents(broker, () => postForm(broker, "/v1/introspect", { token: access }, { token }));

    expectOAuthRefusal(result, { error: "invalid_client", check, action: "token.introspect", secrets: token ? [token, access] : [access] });
  });

  it("introspection with a replayed assertion rejected", async () => {
    const assertion = await signAssertion(broker, alice);
    const token = (await issueToken(broker, alice)).access_token;
    const body = { client_assertion_type: JWT_BEARER, client_assertion: assertion, token };
    await postForm(broker, "/v1/introspect", body);

    const result = await withAuditEvents(broker, () => postForm(broker, "/v1/introspect", body));

    expectOAuthRefusal(result, { error: "invalid_client", check: /jti was already used/, action: "token.introspect", secrets: [assertion, token] });
  });

  it("introspection without token parameter rejected", async () => {
    const result = await withAuditEvents(broker, () => postForm(broker, "/v1/introspect", {}, { token: broker.tokens.auditor }));

    expectOAuthRefusal(result, { error: "invalid_request", check: /missing parameter token/, action: "token.introspect" });
  });

  it("revoked token inactive", async () => {
    const token = await issueToken(broker, alice);
    await broker.request("POST", `/v1/leases/${token.lease_id}/revoke`, { token: broker.tokens.operator, body: {} });

    expect(await introspectAsAuditor(broker, token.access_token)).toEqual({ active: false });
  });

  it("expired token inactive", async () => {
    const token = await issueToken(broker, alice, { ttl: "60" });
    broker.clock.advance(60_000);

    expect(await introspectAsAuditor(broker, token.access_token)).toEqual({ active: false });
  });

  it("token active until its last second", async () => {
    const token = await issueToken(broker, alice, { ttl: "60" });
    broker.clock.advance(59_000);

    expect((await introspectAsAuditor(broker, token.access_token)).active).toBe(true);
  });

  it("superseded token inactive after renewal", async () => {
    const token = await issueToken(broker, alice);
    const renewed = await broker.request("POST", `/v1/leases/${token.lease_id}/renew`, { token: token.access_token, body: { increment: 600 } });

    expect(await introspectAsAuditor(broker, token.access_token)).toEqual({ active: false });
    expect((await introspectAsAuditor(broker, renewed.json.access_token)).active).toBe(true);
  });

  it.each([
    { case: "garbage", token: () => "not-a-token" },
    { case: "unsigned copy", token: () => unsignedJwt({ alg: "none", typ: "at+jwt" }, { sub: alice.accountId, jti: "x" }) },
    { case: "operator token", token: () => broker.tokens.admin },
    { case: "client assertion", token: () => signAssertion(broker, alice) },
  ])("$case introspected inactive", async ({ token }) => {
    expect(await introspectAsAuditor(broker, await token())).toEqual({ active: false });
  });

  it("token signed by a foreign key inactive", async () => {
    const token = await issueToken(broker, alice);
    const [header, payload] = token.access_token.split(".");
    const forged = `${header}.${payload}.${signatureOf((await issueToken(broker, bob)).access_token)}`;

    expect(await introspectAsAuditor(broker, forged)).toEqual({ active: false });
  });

  it("client revokes own token", async () => {
    const token = await issueToken(broker, alice);

    const { response, events } = await withAuditEvents(broker, () => asClient("/v1/revoke", alice, { token: token.access_token }));

    expect(response.status, response.text).toBe(200);
    expect(response.text).toBe("");
    expect(await introspectAsAuditor(broker, token.access_token)).toEqual({ active: false });
    const lease = await broker.request("GET", `/v1/leases/${token.lease_id}`);
    expect(lease.json).toMatchObject({ status: "revoked", revoked_by: `service_account:${alice.accountId}` });
    expect(events.map((event) => event.action)).toEqual(["lease.revoke"]);
    expect(JSON.stringify(events)).not.toContain(token.access_token);
  });

  it("operator revokes token", async () => {
    const token = await issueToken(broker, alice);

    const response = await postForm(broker, "/v1/revoke", { token: token.access_token, token_type_hint: "access_token" }, { token: broker.tokens.operator });

    expect(response.status, response.text).toBe(200);
    expect(await introspectAsAuditor(broker, token.access_token)).toEqual({ active: false });
  });

  it("revoking another client's token refused", async () => {
    const token = await issueToken(broker, alice);

    const result = await withAuditEvents(broker, () => asClient("/v1/revoke", bob, { token: token.access_token }));

    expectOAuthRefusal(result, { error: "unauthorized_client", check: /issued to another client/, reason: "foreign_token", action: "token.revoke", secrets: [token.access_token] });
    expect((await introspectAsAuditor(broker, token.access_token)).active).toBe(true);
  });

  it("auditor cannot revoke", async () => {
    const token = await issueToken(broker, alice);

    const result = await withAuditEvents(broker, () => postForm(broker, "/v1/revoke", { token: token.access_token }, { token: broker.tokens.auditor }));

    expectOAuthRefusal(result, { error: "unauthorized_client", check: /needs the operator role/, reason: "role", action: "token.revoke" });
    expect((await introspectAsAuditor(broker, token.access_token)).active).toBe(true);
  });

  it("revocation without authentication refused", async () => {
    const token = await issueToken(broker, alice);

    const result = await withAuditEvents(broker, () => postForm(broker, "/v1/revoke", { token: token.access_token }));

    expectOAuthRefusal(result, { error: "invalid_client", check: /client authentication is required/, action: "token.revoke", secrets: [token.access_token] });
    expect((await introspectAsAuditor(broker, token.access_token)).active).toBe(true);
  });

  it.each([
    { case: "unknown token", token: async () => "no-such-token" },
    { case: "token already revoked", token: async () => {
      const token = await issueToken(broker, alice);
      await broker.request("POST", `/v1/leases/${token.lease_id}/revoke`, { token: broker.tokens.operator, body: {} });
      return token.access_token;
    } },
    { case: "expired token", token: async () => {
      const token = await issueToken(broker, alice, { ttl: "60" });
      broker.clock.advance(61_000);
      return token.access_token;
    } },
  ])("revoking $case returns 200", async ({ token }) => {
    const value = await token();

    const { response, events } = await withAuditEvents(broker, () => asClient("/v1/revoke", alice, { token: value }));

    expect(response.status, response.text).toBe(200);
    expect(events).toEqual([]);
  });

  it("auditor token from API introspects", async () => {
    const auditor = await createOperatorToken(broker, { role: "auditor" });
    const token = await issueToken(broker, bob);

    const response = await postForm(broker, "/v1/introspect", { token: token.access_token }, { token: auditor.token });

    expect(response.json.active).toBe(true);
  });
});
