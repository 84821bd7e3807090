import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServiceAccount } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker, type TestResponse } from "../support/test-broker.js";
import {
  createWorkload,
  epochSeconds,
  JWT_BEARER,
  JWT_TOKEN_TYPE,
  postForm,
  signAssertion,
  signatureOf,
  TOKEN_EXCHANGE,
  type Workload,
} from "./oauth-fixtures.js";

describe("token redaction", () => {
  let broker: TestBroker;
  let workload: Workload;
  /** Every access token, client assertion and subject token sent to or issued by the broker. */
  const secrets: string[] = [];
  /** Responses to refused requests, whose bodies must not echo what was presented. */
  const refusals: { presented: string; response: TestResponse }[] = [];

  async function assertion(changes: Parameters<typeof signAssertion>[2] = {}): Promise<string> {
    const value = await signAssertion(broker, workload, changes);
    secrets.push(value);
    return value;
  }

  async function token(form: Record<string, string>): Promise<TestResponse> {
    const response = await postForm(broker, "/v1/token", form);
    if (response.json?.access_token) {
      secrets.push(response.json.access_token);
    }
    return response;
  }

  beforeAll(async () => {
    broker = await startTestBroker();
    workload = await createWorkload(broker, { allowed_scopes: ["orders.read"] });
    const clientCredentials = (value: string, extra: Record<string, string> = {}) => ({
      grant_type: "client_credentials",
      client_assertion_type: JWT_BEARER,
      client_assertion: value,
      ...extra,
    });

    // Issued, renewed, introspected and revoked tokens.
    const issued = await token(clientCredentials(await assertion()));
    const renewed = await broker.request("POST", `/v1/leases/${issued.json.lease_id}/renew`, { token: issued.json.access_token, body: { increment: 300 } });
    secrets.push(renewed.json.access_token);
    await postForm(broker, "/v1/introspect", { token: issued.json.access_token }, { token: broker.tokens.auditor });
    await postForm(broker, "/v1/introspect", { client_assertion_type: JWT_BEARER, client_assertion: await assertion(), token: renewed.json.access_token });
    await postForm(broker, "/v1/revoke", { client_assertion_type: JWT_BEARER, client_assertion: await assertion(), token: renewed.json.access_token });

    // Refused requests that carry a token or an assertion.
    const replayed = await assertion();
    await token(clientCredentials(replayed));
    const refusedForms = [
      clientCredentials(replayed),
      clientCredentials(await assertion({ claims: { aud: "https://elsewhere.example.com" } })),
      clientCredentials(await assertion(), { scope: "orders.write" }),
      clientCredentials(await assertion(), { ttl: "forever" }),
      clientCredentials(await assertion({ header: { typ: "at+jwt" } })),
      clientCredentials(issued.json.access_token),
    ];
    for (const form of refusedForms) {
      refusals.push({ presented: form.client_assertion, response: await token(form) });
    }
    const reused = await broker.request("POST", `/v1/leases/${issued.json.lease_id}/renew`, { token: issued.json.access_token, body: {} });
    refusals.push({ presented: issued.json.access_token, response: reused });

    // A token exchange, accepted and refused.
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const issuer = "https://kubernetes.redaction.example.com";
    await broker.request("POST", "/v1/trusted-issuers", { body: { issuer, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: "k1" }] } } });
    const account = await createServiceAccount(broker);
    await broker.request("POST", `/v1/service-accounts/${account.id}/federated-subjects`, { body: { issuer, subject: "system:serviceaccount:a:b" } });
    const now = epochSeconds(broker);
    for (const sub of ["system:serviceaccount:a:b", "system:serviceaccount:a:unbound"]) {
      const subjectToken = await new SignJWT({ "kubernetes.io": { namespace: "a" } })
        .setProtectedHeader({ alg: "ES256", kid: "k1" })
        .setIssuer(issuer)
        .setSubject(sub)
        .setAudience(broker.deps.config.issuer)
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .sign(privateKey);
      secrets.push(subjectToken);
      const response = await token({ grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: JWT_TOKEN_TYPE });
      if (response.status !== 200) {
        refusals.push({ presented: subjectToken, response });
      }
    }
  });

  afterAll(async () => {
    await broker.close();
  });

  /** Whole tokens and their signatures, so that a partial copy is caught too. */
  function needles(): string[] {
    return [...secrets, ...secrets.map(signatureOf)].filter((value) => value.length > 0);
  }

  it("collected every token", () => {
    expect(secrets.length).toBeGreaterThanOrEqual(14);
    expect(refusals).toHaveLength(8);
  });

  it("no log line contains token", () => {
    const leaking = broker.logs.filter((line) => needles().some((needle) => line.includes(needle)));

    expect(broker.logs.length).toBeGreaterThan(20);
    expect(leaking).toEqual([]);
  });

  it("no audit event contains token", async () => {
    const response = await broker.request("GET", "/v1/audit/events");

    expect(response.status).toBe(200);
    expect(response.text).toContain("token.issue");
    expect(needles().filter((needle) => response.text.includes(needle))).toEqual([]);
  });

  it("no lease listing contains token", async () => {
    const listing = await broker.request("GET", "/v1/leases?limit=200");
    const details = await Promise.all(
      (listing.json.items as { id: string }[]).map((lease) => broker.request("GET", `/v1/leases/${lease.id}`)),
    );

    const texts = [listing.text, ...details.map((detail) => detail.text)];
    expect(listing.json.items.length).toBeGreaterThanOrEqual(3);
    expect(needles().filter((needle) => texts.some((text) => text.includes(needle)))).toEqual([]);
  });

  it("refusals do not echo presented token", () => {
    for (const { presented, response } of refusals) {
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.text).not.toContain(presented);
      expect(response.text).not.toContain(signatureOf(presented));
    }
  });
});
