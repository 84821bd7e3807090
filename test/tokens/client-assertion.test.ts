import { createPublicKey, KeyObject, randomUUID, sign } from "node:crypto";
import { type CryptoKey, importJWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateJwkPair } from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker } from "../support/test-broker.js";
import {
  addKeyPair,
  createWorkload,
  epochSeconds,
  expectOAuthRefusal,
  issueToken,
  JWT_BEARER,
  postForm,
  signAssertion,
  signatureOf,
  unsignedJwt,
  withAuditEvents,
  type AssertionChanges,
  type Workload,
} from "./oauth-fixtures.js";

/** The harness clock's start, in seconds since the epoch. */
const TEST_NOW_SECONDS = Date.parse(TEST_NOW) / 1000;
/** A service-account id that no account has. */
const UNKNOWN_ACCOUNT = "sa_0123456789abcdef01234567";

describe("client assertion", () => {
  let broker: TestBroker;
  let workload: Workload;
  let twoKeys: Workload;
  let other: Workload;
  let suspended: Workload;
  let decommissioned: Workload;
  let expired: Workload;

  beforeAll(async () => {
    broker = await startTestBroker();
    workload = await createWorkload(broker);
    twoKeys = await createWorkload(broker);
    await addKeyPair(broker, twoKeys.accountId);
    other = await createWorkload(broker);

    suspended = await createWorkload(broker);
    await broker.request("POST", `/v1/service-accounts/${suspended.accountId}/suspend`, { body: { reason: "test" } });
    decommissioned = await createWorkload(broker);
    await broker.request("POST", `/v1/service-accounts/${decommissioned.accountId}/decommission`, { body: { reason: "test" } });
    // The API accepts only a future expiry, so the row is moved into the past directly.
    expired = await createWorkload(broker);
    await broker.query(`update service_accounts set expires_at = '2026-06-01T11:00:00Z' where id = '${expired.accountId}'`);
  });

  afterAll(async () => {
    await broker.close();
  });

  function form(assertion: string, extra: Record<string, string> = {}): Record<string, string> {
    return { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: assertion, ...extra };
  }

  function signed(changes: AssertionChanges = {}, signer: () => Workload = () => workload) {
    return async () => form(await signAssertion(broker, signer(), changes));
  }

  /** Signs a well-formed assertion, has the broker accept it once, then returns it for a second use. */
  async function usedOnce(): Promise<Record<string, string>> {
    const assertion = await signAssertion(broker, workload);
    const first = await postForm(broker, "/v1/token", form(assertion));
    expect(first.status, first.text).toBe(200);
    return form(assertion);
  }

  /** Signs with HS256, using the PEM text of the workload's registered public key as the HMAC secret. */
  async function hmacWithPublicKey(): Promise<Record<string, string>> {
    const pem = createPublicKey({ key: workload.publicJwk as never, format: "jwk" }).export({ type: "spki", format: "pem" });
    const now = epochSeconds(broker);
    const assertion = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: "HS256", kid: workload.kid, typ: "JWT" })
      .setIssuer(workload.accountId)
      .setSubject(workload.accountId)
      .setAudience(broker.deps.config.issuer)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(Buffer.from(String(pem)));
    return form(assertion);
  }

  async function algNone(): Promise<Record<string, string>> {
    const now = epochSeconds(broker);
    const claims = { iss: workload.accountId, sub: workload.accountId, aud: broker.deps.config.issuer, iat: now, exp: now + 60, jti: randomUUID() };
    return form(unsignedJwt({ alg: "none", typ: "JWT" }, claims));
  }

  async function foreignKey(): Promise<Record<string, string>> {
    const stranger = generateJwkPair("ec-p256");
    return form(await signAssertion(broker, workload, { key: await importJWK(stranger.privateJwk, "ES256") }));
  }

  /** Re-signs a valid assertion's header and payload with a DER-encoded ECDSA signature instead of JOSE's raw r||s. */
  async function derSignature(): Promise<Record<string, string>> {
    const valid = await signAssertion(broker, workload);
    const signingInput = valid.split(".").slice(0, 2).join(".");
    const der = sign("sha256", Buffer.from(signingInput), { key: KeyObject.from(workload.privateKey as CryptoKey), dsaEncoding: "der" });
    return form(`${signingInput}.${der.toString("base64url")}`);
  }

  async function rsaAlgorithmOnEcKey(): Promise<Record<string, string>> {
    const rsa = generateJwkPair("rsa-2048");
    return form(await signAssertion(broker, workload, { header: { alg: "RS256" }, key: await importJWK(rsa.privateJwk, "RS256") }));
  }

  async function accessTokenAsAssertion(): Promise<Record<string, string>> {
    const token = await issueToken(broker, workload);
    return form(token.access_token);
  }

  const refused: { case: string; form: () => Promise<Record<string, string>>; error: string; check: RegExp; reason: string }[] = [
    { case: "alg none", form: algNone, error: "invalid_client", check: /algorithm none is not allowed/, reason: "algorithm" },
    { case: "HS256 keyed with the public key", form: hmacWithPublicKey, error: "invalid_client", check: /algorithm HS256 is not allowed/, reason: "algorithm" },
    { case: "signature by an unregistered key", form: foreignKey, error: "invalid_client", check: /signature does not verify/, reason: "signature" },
    { case: "ES256 signature in DER form", form: derSignature, error: "invalid_client", check: /signature does not verify/, reason: "signature" },
    {
      case: "alg not fitting the registered key",
      form: rsaAlgorithmOnEcKey,
      error: "invalid_client",
      check: /alg RS256 does not match the registered key's ES256/,
      reason: "algorithm",
    },
    {
      case: "kid of another account's key",
      form: async () => signed({ header: { kid: other.kid } })(),
      error: "invalid_client",
      check: /kid matches no key/,
      reason: "unknown_kid",
    },
    { case: "wrong kid", form: signed({ header: { kid: "no-such-kid" } }), error: "invalid_client", check: /kid matches no key/, reason: "unknown_kid" },
    {
      case: "no kid with two registered keys",
      form: signed({ header: { kid: undefined } }, () => twoKeys),
      error: "invalid_client",
      check: /several keys .* set kid/,
      reason: "ambiguous_key",
    },
    { case: "iss differs from sub", form: signed({ claims: { iss: UNKNOWN_ACCOUNT } }), error: "invalid_client", check: /iss and sub/, reason: "claim_sub" },
    {
      case: "unknown sub",
      form: signed({ claims: { iss: UNKNOWN_ACCOUNT, sub: UNKNOWN_ACCOUNT } }),
      error: "invalid_client",
      check: /sub is not a registered service account/,
      reason: "unknown_client",
    },
    {
      case: "client_id differs from sub",
      form: async () => ({ ...(await signed()()), client_id: other.accountId }),
      error: "invalid_client",
      check: /client_id does not match the client assertion sub/,
      reason: "client_id",
    },
    { case: "wrong aud", form: signed({ claims: { aud: "https://broker.example.com" } }), error: "invalid_client", check: /aud must be/, reason: "claim_aud" },
    {
      case: "aud as an array",
      form: async () => signed({ claims: { aud: [broker.deps.config.issuer] } })(),
      error: "invalid_client",
      check: /aud must be a single string/,
      reason: "claim_aud",
    },
    {
      case: "aud with a trailing slash",
      form: async () => signed({ claims: { aud: `${broker.deps.config.issuer}/` } })(),
      error: "invalid_client",
      check: /aud must be/,
      reason: "claim_aud",
    },
    { case: "missing exp", form: signed({ omit: ["exp"] }), error: "invalid_client", check: /claim exp .*missing/, reason: "claim_exp" },
    {
      case: "expired",
      form: async () => signed({ claims: { iat: epochSeconds(broker, -120), exp: epochSeconds(broker, -60) } })(),
      error: "invalid_client",
      check: /has expired \(exp\)/,
      reason: "expired",
    },
    {
      case: "lifetime over 300 s",
      form: async () => signed({ claims: { exp: epochSeconds(broker, 301) } })(),
      error: "invalid_client",
      check: /lifetime exceeds 300 seconds/,
      reason: "lifetime",
    },
    {
      case: "iat an hour ahead",
      form: async () => signed({ claims: { iat: epochSeconds(broker, 3600), exp: epochSeconds(broker, 3660) } })(),
      error: "invalid_client",
      check: /iat is in the future/,
      reason: "claim_iat",
    },
    {
      case: "nbf beyond clock skew",
      form: async () => signed({ claims: { nbf: epochSeconds(broker, 31), exp: epochSeconds(broker, 120) } })(),
      error: "invalid_client",
      check: /claim nbf is invalid/,
      reason: "claim_nbf",
    },
    { case: "missing jti", form: signed({ omit: ["jti"] }), error: "invalid_client", check: /claim jti .*missing/, reason: "claim_jti" },
    { case: "empty jti", form: signed({ claims: { jti: "" } }), error: "invalid_client", check: /jti must be a string of 1 to 256 characters/, reason: "claim_jti" },
    {
      case: "jti over 256 characters",
      form: signed({ claims: { jti: "j".repeat(257) } }),
      error: "invalid_client",
      check: /jti must be a string of 1 to 256 characters/,
      reason: "claim_jti",
    },
    { case: "iat as text", form: signed({ claims: { iat: String(TEST_NOW_SECONDS) } }), error: "invalid_client", check: /claim iat is invalid/, reason: "claim_iat" },
    { case: "replayed jti", form: usedOnce, error: "invalid_client", check: /jti was already used/, reason: "replay" },
    {
      case: "assertion over 16 KiB",
      form: signed({ claims: { padding: "x".repeat(16 * 1024) } }),
      error: "invalid_client",
      check: /larger than 16384 bytes/,
      reason: "too_large",
    },
    {
      case: "not a JWT",
      form: async () => form("opaque-value-that-is-not-a-jwt-7f3a9c"),
      error: "invalid_client",
      check: /not a compact signed JWT/,
      reason: "malformed",
    },
    {
      case: "access token as assertion",
      form: accessTokenAsAssertion,
      error: "invalid_client",
      check: /typ at\+jwt is not a client assertion/,
      reason: "typ",
    },
    {
      case: "typ at+jwt signed by the workload",
      form: signed({ header: { typ: "at+jwt" } }),
      error: "invalid_client",
      check: /typ at\+jwt is not a client assertion/,
      reason: "typ",
    },
    {
      case: "wrong client_assertion_type",
      form: async () => ({ ...(await signed()()), client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:saml2-bearer" }),
      error: "invalid_client",
      check: /client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer/,
      reason: "assertion_type",
    },
    {
      case: "missing assertion",
      form: async () => ({ grant_type: "client_credentials", client_assertion_type: JWT_BEARER }),
      error: "invalid_client",
      check: /client authentication is required/,
      reason: "missing",
    },
    {
      case: "missing client_assertion_type",
      form: async () => {
        const { client_assertion_type: _type, ...rest } = await signed()();
        return rest;
      },
      error: "invalid_client",
      check: /client authentication is required/,
      reason: "missing",
    },
    { case: "suspended account", form: signed({}, () => suspended), error: "invalid_client", check: /is suspended/, reason: "account_suspended" },
    {
      case: "decommissioned account",
      form: signed({}, () => decommissioned),
      error: "invalid_client",
      check: /is decommissioned/,
      reason: "account_decommissioned",
    },
    { case: "expired account", form: signed({}, () => expired), error: "invalid_client", check: /expired at 2026-06-01T11:00:00.000Z/, reason: "account_expired" },
  ];

  it.each(refused)("rejects $case", async ({ form: build, error, check, reason }) => {
    const body = await build();
    const assertion = body["client_assertion"];
    const secrets = assertion ? [assertion, signatureOf(assertion)].filter((value) => value.length > 0) : [];

    const result = await withAuditEvents(broker, () => postForm(broker, "/v1/token", body));

    expectOAuthRefusal(result, { error, check, reason, secrets });
    expect(result.response.json.access_token).toBeUndefined();
  });

  it.each([
    { case: "nbf within clock skew", changes: () => ({ claims: { nbf: epochSeconds(broker, 29) } }) },
    { case: "iat within clock skew", changes: () => ({ claims: { iat: epochSeconds(broker, 29), exp: epochSeconds(broker, 89) } }) },
    { case: "exp within clock skew", changes: () => ({ claims: { iat: epochSeconds(broker, -60), exp: epochSeconds(broker, -29) } }) },
    { case: "aud as token endpoint URL", changes: () => ({ claims: { aud: `${broker.deps.config.issuer}/v1/token` } }) },
    { case: "typ client-authentication+jwt", changes: () => ({ header: { typ: "client-authentication+jwt" } }) },
    { case: "no typ", changes: () => ({ header: { typ: undefined } }) },
    { case: "no kid with one registered key", changes: () => ({ header: { kid: undefined } }) },
    { case: "no iat", changes: () => ({ omit: ["iat"] }) },
    { case: "lifetime of exactly 300 s", changes: () => ({ claims: { exp: epochSeconds(broker, 300) } }) },
  ])("accepts $case", async ({ changes }) => {
    const assertion = await signAssertion(broker, workload, changes());

    const response = await postForm(broker, "/v1/token", form(assertion));

    expect(response.status, response.text).toBe(200);
    expect(response.json.token_type).toBe("Bearer");
  });

  it.each([
    { case: "Ed25519", keyType: "ed25519" as const, alg: undefined },
    { case: "RSA with RS256", keyType: "rsa-2048" as const, alg: undefined },
    { case: "RSA with PS256", keyType: "rsa-2048" as const, alg: "PS256" },
  ])("accepts $case key", async ({ keyType, alg }) => {
    const signer = await createWorkload(broker, {}, keyType, alg);
    const assertion = await signAssertion(broker, signer);

    const response = await postForm(broker, "/v1/token", form(assertion));

    expect(response.status, response.text).toBe(200);
  });

  it("client_id equal to sub accepted", async () => {
    const assertion = await signAssertion(broker, workload);

    const response = await postForm(broker, "/v1/token", form(assertion, { client_id: workload.accountId }));

    expect(response.status, response.text).toBe(200);
  });

  it("refused assertion keeps its jti unused", async () => {
    const jti = randomUUID();
    const assertion = await signAssertion(broker, workload, { claims: { jti } });
    const refusedFirst = await postForm(broker, "/v1/token", form(assertion, { client_assertion_type: "urn:example:wrong" }));

    const accepted = await postForm(broker, "/v1/token", form(assertion));

    expect(refusedFirst.status).toBe(401);
    expect(accepted.status, accepted.text).toBe(200);
  });

  it("removed key rejected after use", async () => {
    const keyed = await createWorkload(broker);
    const beforeRemoval = await postForm(broker, "/v1/token", form(await signAssertion(broker, keyed)));

    const removal = await broker.request("DELETE", `/v1/service-accounts/${keyed.accountId}/keys/${keyed.kid}`);
    const afterRemoval = await postForm(broker, "/v1/token", form(await signAssertion(broker, keyed)));

    expect(beforeRemoval.status, beforeRemoval.text).toBe(200);
    expect(removal.status).toBe(204);
    expect(afterRemoval.status).toBe(401);
    expect(afterRemoval.json.error).toBe("invalid_client");
    expect(afterRemoval.json.error_description).toMatch(/kid matches no key/);
  });

  it("changed key row imported again", async () => {
    const keyed = await createWorkload(broker);
    const replacement = generateJwkPair("ec-p256");
    const beforeChange = await postForm(broker, "/v1/token", form(await signAssertion(broker, keyed)));

    const jwk = JSON.stringify({ ...replacement.publicJwk, kid: keyed.kid, alg: "ES256" });
    await broker.query(`update workload_keys set jwk = '${jwk}'::jsonb where service_account_id = '${keyed.accountId}'`);
    const oldKey = await postForm(broker, "/v1/token", form(await signAssertion(broker, keyed)));
    const newKey = await postForm(broker, "/v1/token", form(await signAssertion(broker, keyed, { key: await importJWK(replacement.privateJwk, "ES256") })));

    expect(beforeChange.status, beforeChange.text).toBe(200);
    expect(oldKey.status).toBe(401);
    expect(oldKey.json.error_description).toMatch(/signature does not verify/);
    expect(newKey.status, newKey.text).toBe(200);
  });

  it("jti is scoped to the issuing account", async () => {
    const jti = randomUUID();
    const first = await postForm(broker, "/v1/token", form(await signAssertion(broker, workload, { claims: { jti } })));

    const second = await postForm(broker, "/v1/token", form(await signAssertion(broker, other, { claims: { jti } })));

    expect(first.status, first.text).toBe(200);
    expect(second.status, second.text).toBe(200);
  });
});
