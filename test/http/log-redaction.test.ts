import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addWorkloadKey,
  createOperatorToken,
  createServiceAccount,
  createTrustedIssuer,
  FUTURE_EXPIRY,
  generateJwkPair,
  uniqueName,
} from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

/** Returns the secret part of an operator token, after the `sbo_<id>.` prefix. */
function secretOf(token: string): string {
  return token.slice(token.indexOf(".") + 1);
}

describe("log redaction", () => {
  let broker: TestBroker;
  /** Every token value the broker accepted, issued or rejected. None may be logged. */
  const tokens: string[] = [];
  /** Private key members sent in rejected key registrations. */
  const privateValues: string[] = [];

  beforeAll(async () => {
    broker = await startTestBroker();
    tokens.push(...Object.values(broker.tokens));

    // Requests that authenticate with each harness token.
    for (const token of Object.values(broker.tokens)) {
      await broker.request("GET", "/v1/applications", { token });
      await broker.request("GET", "/v1/audit/verify", { token });
    }

    // Tokens whose values appear in responses, then used, revoked and rejected.
    for (const role of ["admin", "operator", "auditor"]) {
      const created = await createOperatorToken(broker, { role, expires_at: FUTURE_EXPIRY });
      tokens.push(created.token);
      await broker.request("GET", "/v1/service-accounts", { token: created.token });
      await broker.request("POST", "/v1/operator-tokens", { token: created.token, body: { role: "auditor", name: uniqueName("nested") } });
    }
    const revoked = await createOperatorToken(broker, { role: "operator" });
    tokens.push(revoked.token);
    await broker.request("POST", `/v1/operator-tokens/${revoked.id}/revoke`);
    await broker.request("GET", "/v1/applications", { token: revoked.token });

    // Tokens that fail authentication: a wrong secret, and values that are not tokens at all.
    const wrongSecret = `sbo_${revoked.id}.${"C".repeat(43)}`;
    const notATokenButSecret = "hvs.CAESIJ-not-an-operator-token-but-still-a-secret";
    tokens.push(wrongSecret, notATokenButSecret);
    await broker.request("GET", "/v1/applications", { token: wrongSecret });
    await broker.request("GET", "/v1/applications", { token: notATokenButSecret });
    await broker.request("GET", "/v1/applications", { headers: { authorization: `Basic ${Buffer.from(`admin:${notATokenButSecret}`).toString("base64")}` } });

    // Public keys registered, private keys rejected.
    const account = await createServiceAccount(broker);
    for (const type of ["ec-p256", "ed25519", "rsa-2048"] as const) {
      const pair = generateJwkPair(type);
      await addWorkloadKey(broker, account.id, pair.publicJwk);
      await broker.request("POST", `/v1/service-accounts/${account.id}/keys`, { body: { jwk: pair.privateJwk } });
      await broker.request("POST", "/v1/trusted-issuers", {
        body: { issuer: `https://${uniqueName("issuer")}.example.com`, jwks: { keys: [pair.privateJwk] } },
      });
      for (const member of ["d", "p", "q", "dp", "dq", "qi"]) {
        if (typeof pair.privateJwk[member] === "string") {
          privateValues.push(pair.privateJwk[member] as string);
        }
      }
    }
    await createTrustedIssuer(broker);
  });

  afterAll(async () => {
    await broker.close();
  });

  it("logs every request", () => {
    const answered = broker.logs.filter((line) => line.includes('"request answered"'));

    expect(answered.length).toBeGreaterThan(30);
  });

  it("no log line contains token value", () => {
    const secrets = [...tokens, ...tokens.map(secretOf)];

    const leaking = broker.logs.filter((line) => secrets.some((secret) => line.includes(secret)));

    expect(tokens.length).toBe(9);
    expect(leaking).toEqual([]);
  });

  it("no log line contains private key material", () => {
    const leaking = broker.logs.filter((line) => privateValues.some((value) => line.includes(value)));

    expect(privateValues.length).toBe(8);
    expect(leaking).toEqual([]);
  });

  it("401 body omits presented token", async () => {
    const token = `sbo_tok_0123456789abcdef01234567.${"D".repeat(43)}`;

    const response = await broker.request("GET", "/v1/applications", { token });

    expect(response.status).toBe(401);
    expect(response.text).not.toContain("D".repeat(43));
  });

  it("rejected private key not echoed in response", async () => {
    const pair = generateJwkPair("ec-p256");
    const account = await createServiceAccount(broker);

    const response = await broker.request("POST", `/v1/service-accounts/${account.id}/keys`, { body: { jwk: pair.privateJwk } });

    expect(response.status).toBe(400);
    expect(response.text).not.toContain(String(pair.privateJwk["d"]));
  });
});
