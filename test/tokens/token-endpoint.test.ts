import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import {
  createWorkload,
  expectOAuthRefusal,
  JWT_BEARER,
  postForm,
  requestToken,
  signAssertion,
  signatureOf,
  withAuditEvents,
  type Workload,
} from "./oauth-fixtures.js";

describe("token endpoint requests", () => {
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

  async function clientCredentials(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    return {
      grant_type: "client_credentials",
      client_assertion_type: JWT_BEARER,
      client_assertion: await signAssertion(broker, workload),
      ...extra,
    };
  }

  // RFC 6749 section 5.2 names invalid_request for a missing required parameter and
  // keeps unsupported_grant_type for a grant type the server does not support.
  it.each([
    { case: "missing grant_type", grantType: undefined, error: "invalid_request", check: /missing parameter grant_type/, reason: "missing_parameter" },
    { case: "empty grant_type", grantType: "", error: "invalid_request", check: /missing parameter grant_type/, reason: "missing_parameter" },
    { case: "password grant_type", grantType: "password", error: "unsupported_grant_type", check: /grant_type must be client_credentials or/, reason: "grant_type" },
    { case: "authorization_code grant_type", grantType: "authorization_code", error: "unsupported_grant_type", check: /grant_type must be/, reason: "grant_type" },
    { case: "jwt-bearer grant_type", grantType: "urn:ietf:params:oauth:grant-type:jwt-bearer", error: "unsupported_grant_type", check: /grant_type must be/, reason: "grant_type" },
    { case: "grant_type in upper case", grantType: "CLIENT_CREDENTIALS", error: "unsupported_grant_type", check: /grant_type must be/, reason: "grant_type" },
  ])("rejects $case", async ({ grantType, error, check, reason }) => {
    const { grant_type: _grantType, ...rest } = await clientCredentials();
    const body = grantType === undefined ? rest : { ...rest, grant_type: grantType };

    const result = await withAuditEvents(broker, () => postForm(broker, "/v1/token", body));

    expectOAuthRefusal(result, { error, check, reason, secrets: [body.client_assertion!] });
  });

  it("rejects repeated parameter", async () => {
    const body = Object.entries(await clientCredentials({ scope: "orders.read" }));
    body.push(["scope", "orders.write"]);

    const result = await withAuditEvents(broker, () => postForm(broker, "/v1/token", body));

    expectOAuthRefusal(result, { error: "invalid_request", check: /parameter scope is repeated/, reason: "repeated_parameter" });
  });

  it("rejects repeated client_assertion", async () => {
    const form = await clientCredentials();
    const body = [...Object.entries(form), ["client_assertion", await signAssertion(broker, workload)] as [string, string]];

    const result = await withAuditEvents(broker, () => postForm(broker, "/v1/token", body));

    expectOAuthRefusal(result, {
      error: "invalid_request",
      check: /parameter client_assertion is repeated/,
      reason: "repeated_parameter",
      secrets: [form.client_assertion!, signatureOf(form.client_assertion!)],
    });
  });

  it("rejects JSON body", async () => {
    const form = await clientCredentials();

    const result = await withAuditEvents(broker, () =>
      broker.request("POST", "/v1/token", { token: null, body: form }),
    );

    expectOAuthRefusal(result, {
      error: "invalid_request",
      check: /must be application\/x-www-form-urlencoded/,
      reason: "content_type",
      secrets: [form.client_assertion!],
    });
  });

  it.each([
    { case: "text/plain", contentType: "text/plain" },
    { case: "multipart/form-data", contentType: "multipart/form-data; boundary=x" },
    { case: "a form type with a suffix", contentType: "application/x-www-form-urlencoded-evil" },
  ])("rejects $case content type", async ({ contentType }) => {
    const form = await clientCredentials();

    const result = await withAuditEvents(broker, () => postForm(broker, "/v1/token", form, { contentType }));

    expectOAuthRefusal(result, { error: "invalid_request", check: /application\/x-www-form-urlencoded/, reason: "content_type" });
  });

  it("rejects request without body", async () => {
    const result = await withAuditEvents(broker, () =>
      broker.request("POST", "/v1/token", { token: null, headers: { "content-type": "application/x-www-form-urlencoded" } }),
    );

    expectOAuthRefusal(result, { error: "invalid_request", check: /missing parameter grant_type/ });
  });

  it.each(["application/x-www-form-urlencoded; charset=UTF-8", "application/x-www-form-urlencoded;charset=utf-8", "Application/X-WWW-Form-Urlencoded"])(
    "accepts content type %s",
    async (contentType) => {
      const response = await postForm(broker, "/v1/token", await clientCredentials(), { contentType });

      expect(response.status, response.text).toBe(200);
      expect(response.json.token_type).toBe("Bearer");
    },
  );

  it.each<{ case: string; extra: Record<string, string>; error: string; check: RegExp; reason: string }>([
    { case: "audience not allowed", extra: { audience: "https://db.payments.example.com" }, error: "invalid_target", check: /audience https:\/\/db\.payments\.example\.com is not allowed/, reason: "audience" },
    { case: "resource not allowed", extra: { resource: "https://evil.example.com" }, error: "invalid_target", check: /audience https:\/\/evil\.example\.com is not allowed/, reason: "audience" },
    { case: "audience with a trailing slash", extra: { audience: "https://db.orders.example.com/" }, error: "invalid_target", check: /is not allowed/, reason: "audience" },
    {
      case: "audience and resource naming different targets",
      extra: { audience: "https://db.orders.example.com", resource: "https://evil.example.com" },
      error: "invalid_target",
      check: /audience and resource name different targets/,
      reason: "audience",
    },
    { case: "scope not allowed", extra: { scope: "orders.read payments.write" }, error: "invalid_scope", check: /scope payments\.write is not allowed/, reason: "scope" },
    { case: "scope of another case", extra: { scope: "ORDERS.READ" }, error: "invalid_scope", check: /scope ORDERS\.READ is not allowed/, reason: "scope" },
    ...["0", "-1", "1.5", "abc", "1e3", "10000000", " 60", "0x10", ""].map((ttl) => ({
      case: `ttl '${ttl}'`,
      extra: { ttl },
      error: "invalid_request",
      check: /ttl must be a positive whole number of seconds/,
      reason: "ttl",
    })),
  ])("rejects $case", async ({ extra, error, check, reason }) => {
    const form = await clientCredentials(extra);

    const result = await withAuditEvents(broker, () => postForm(broker, "/v1/token", form));

    expectOAuthRefusal(result, { error, check, reason, secrets: [form.client_assertion!, signatureOf(form.client_assertion!)] });
  });

  it("refusal audit names actor and reason", async () => {
    const form = await clientCredentials({ scope: "admin" });

    const { events } = await withAuditEvents(broker, () => postForm(broker, "/v1/token", form));

    expect(events).toHaveLength(1);
    expect(events[0]!.action).toBe("token.issue");
    expect(events[0]!.outcome).toBe("denied");
    expect(events[0]!.target).toBeNull();
    expect(events[0]!.details).toEqual({
      error: "invalid_scope",
      reason: "scope",
      description: `scope admin is not allowed for service account ${workload.accountId}`,
    });
  });

  it("rejected scope leaves jti unused", async () => {
    const form = await clientCredentials({ scope: "admin" });
    const rejected = await postForm(broker, "/v1/token", form);

    const accepted = await postForm(broker, "/v1/token", { ...form, scope: "orders.read" });

    expect(rejected.status).toBe(400);
    expect(rejected.json.error).toBe("invalid_scope");
    expect(accepted.status, accepted.text).toBe(200);
  });

  it("concurrent uses of one assertion issue once", async () => {
    const form = await clientCredentials();

    const { response: responses, events } = await withAuditEvents(broker, () =>
      Promise.all([1, 2, 3].map(() => postForm(broker, "/v1/token", form))),
    );

    expect(responses.map((response) => response.status).sort()).toEqual([200, 401, 401]);
    expect(events.map((event) => event.outcome).sort()).toEqual(["denied", "denied", "success"]);
    expect(events.filter((event) => event.outcome === "denied").map((event) => event.details["reason"])).toEqual(["replay", "replay"]);
  });

  it("allowed audience, scope and ttl accepted", async () => {
    const response = await requestToken(broker, workload, { audience: "https://db.orders.example.com", scope: "orders.read", ttl: "120" });

    expect(response.status, response.text).toBe(200);
    expect(response.json.scope).toBe("orders.read");
    expect(response.json.expires_in).toBe(120);
  });

  it("resource parameter sets audience", async () => {
    const response = await requestToken(broker, workload, { resource: "https://db.orders.example.com" });

    expect(response.status, response.text).toBe(200);
    const lease = await broker.request("GET", `/v1/leases/${response.json.lease_id}`);
    expect(lease.json.audience).toBe("https://db.orders.example.com");
  });

  it("same audience and resource accepted", async () => {
    const target = "https://db.orders.example.com";

    const response = await requestToken(broker, workload, { audience: target, resource: target });

    expect(response.status, response.text).toBe(200);
  });

  it("broker issuer always allowed as audience", async () => {
    const response = await requestToken(broker, workload, { audience: broker.deps.config.issuer });

    expect(response.status, response.text).toBe(200);
  });

  it("success answer forbids caching", async () => {
    const response = await requestToken(broker, workload);

    expect(response.status, response.text).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.headers.get("pragma")).toBe("no-cache");
  });

  it("client_credentials answer has no issued_token_type", async () => {
    const response = await requestToken(broker, workload);

    expect(Object.keys(response.json).sort()).toEqual(["access_token", "expires_in", "lease_id", "scope", "token_type"]);
  });

  it("GET on token endpoint refused with 405", async () => {
    const response = await broker.request("GET", "/v1/token", { token: null });

    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("POST");
  });
});
