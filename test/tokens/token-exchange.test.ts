import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type CryptoKey, decodeJwt, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createServiceAccount } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import {
  ACCESS_TOKEN_TYPE,
  epochSeconds,
  expectOAuthRefusal,
  JWT_TOKEN_TYPE,
  postForm,
  signatureOf,
  TOKEN_EXCHANGE,
  unsignedJwt,
  withAuditEvents,
} from "./oauth-fixtures.js";

const KUBERNETES_ISSUER = "https://kubernetes.default.svc.cluster.local";
const KUBERNETES_SUBJECT = "system:serviceaccount:orders:orders-api";
const GITHUB_ISSUER = "https://token.actions.githubusercontent.com";
const GITHUB_AUDIENCE = "https://github.com/octo-org";
const GITHUB_SUBJECT = "repo:octo-org/orders:ref:refs/heads/main";
const SPIFFE_ISSUER = "https://spire.example.org";
const SPIFFE_ID = "spiffe://example.org/ns/orders/sa/orders-api";

/** A token issuer stand-in: one key pair whose public half the broker trusts. */
interface IssuerKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function issuerKey(kid: string): Promise<IssuerKey> {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid } };
}

/** A JWKS endpoint on 127.0.0.1 that counts how often it is fetched; `keys` can change between fetches. */
interface JwksServer {
  issuer: string;
  jwksUri: string;
  keys: JWK[];
  fetches: number;
  close(): Promise<void>;
}

async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  const state = { keys, fetches: 0 } as JwksServer;
  const server: Server = createServer((request, response) => {
    if (request.url !== "/keys") {
      response.writeHead(404).end();
      return;
    }
    state.fetches += 1;
    response.writeHead(200, { "content-type": "application/json", connection: "close" });
    response.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  state.issuer = `http://127.0.0.1:${port}`;
  state.jwksUri = `${state.issuer}/keys`;
  state.close = () => new Promise((resolve) => server.close(() => resolve()));
  return state;
}

describe("token exchange", () => {
  let broker: TestBroker;
  let kubernetesKey: IssuerKey;
  let githubKey: IssuerKey;
  let spiffeKey: IssuerKey;
  let kubernetesAccount: string;
  let githubAccount: string;
  let spiffeAccount: string;

  beforeAll(async () => {
    broker = await startTestBroker();
    kubernetesKey = await issuerKey("cluster-key-1");
    githubKey = await issuerKey("github-actions-1");
    spiffeKey = await issuerKey("spire-jwt-1");

    await trustIssuer({ issuer: KUBERNETES_ISSUER, jwks: { keys: [kubernetesKey.publicJwk] } });
    await trustIssuer({ issuer: GITHUB_ISSUER, jwks: { keys: [githubKey.publicJwk] }, audiences: [GITHUB_AUDIENCE] });
    // SPIRE publishes its JWT-SVID keys without `alg` and with use "jwt-svid": the
    // algorithm follows from the key type.
    const { alg: _alg, ...spiffeJwkWithoutAlg } = spiffeKey.publicJwk;
    await trustIssuer({ issuer: SPIFFE_ISSUER, jwks: { keys: [{ ...spiffeJwkWithoutAlg, use: "jwt-svid" }] } });

    kubernetesAccount = (await createServiceAccount(broker, { allowed_scopes: ["orders.read"], allowed_audiences: ["https://db.orders.example.com"] })).id;
    await bind(kubernetesAccount, { issuer: KUBERNETES_ISSUER, subject: KUBERNETES_SUBJECT });
    githubAccount = (await createServiceAccount(broker, { kind: "ci" })).id;
    await bind(githubAccount, { issuer: GITHUB_ISSUER, subject: GITHUB_SUBJECT, claims: { repository_id: "892431", repository_owner_id: "1342004" } });
    spiffeAccount = (await createServiceAccount(broker)).id;
    await bind(spiffeAccount, { issuer: SPIFFE_ISSUER, subject: SPIFFE_ID });
  });

  afterAll(async () => {
    await broker.close();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  async function trustIssuer(body: Record<string, unknown>): Promise<void> {
    const response = await broker.request("POST", "/v1/trusted-issuers", { body });
    expect(response.status, response.text).toBe(201);
  }

  async function bind(accountId: string, body: Record<string, unknown>): Promise<void> {
    const response = await broker.request("POST", `/v1/service-accounts/${accountId}/federated-subjects`, { body });
    expect(response.status, response.text).toBe(201);
  }

  /** Signs a subject token with `key`; `claims` override or add to iss, sub, aud, iat and exp. */
  function subjectToken(key: IssuerKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
    const now = epochSeconds(broker);
    return new SignJWT({ aud: broker.deps.config.issuer, iat: now, exp: now + 600, ...claims })
      .setProtectedHeader({ alg: "ES256", kid: key.kid, typ: "JWT", ...header })
      .sign(key.privateKey);
  }

  /** Signs a projected service-account token with extended expiration: `exp` a year out, `warnafter` an hour after issue. */
  function kubernetesToken(changes: { warnafter?: number; iat?: number; claims?: Record<string, unknown> } = {}): Promise<string> {
    const iat = changes.iat ?? epochSeconds(broker);
    return subjectToken(kubernetesKey, {
      iss: KUBERNETES_ISSUER,
      sub: KUBERNETES_SUBJECT,
      iat,
      nbf: iat,
      exp: iat + 365 * 24 * 3600,
      "kubernetes.io": {
        namespace: "orders",
        serviceaccount: { name: "orders-api", uid: "5b2f0b54-8c3e-4d7e-9d0a-1c2b3d4e5f60" },
        pod: { name: "orders-api-7d9f8b6c5-x2x9k", uid: "0f9e8d7c-6b5a-4f3e-9d2c-1b0a9f8e7d6c" },
        warnafter: changes.warnafter ?? iat + 3607,
      },
      ...changes.claims,
    });
  }

  function githubToken(claims: Record<string, unknown> = {}): Promise<string> {
    return subjectToken(githubKey, {
      iss: GITHUB_ISSUER,
      sub: GITHUB_SUBJECT,
      aud: GITHUB_AUDIENCE,
      repository: "octo-org/orders",
      repository_id: "892431",
      repository_owner: "octo-org",
      repository_owner_id: "1342004",
      ref: "refs/heads/main",
      workflow: "deploy",
      ...claims,
    });
  }

  function spiffeToken(claims: Record<string, unknown> = {}): Promise<string> {
    return subjectToken(spiffeKey, { iss: SPIFFE_ISSUER, sub: SPIFFE_ID, ...claims });
  }

  function exchange(subject: string, extra: Record<string, string> = {}) {
    return postForm(broker, "/v1/token", {
      grant_type: TOKEN_EXCHANGE,
      subject_token: subject,
      subject_token_type: JWT_TOKEN_TYPE,
      ...extra,
    });
  }

  async function expectExchangeRefused(subject: string, expected: { error: string; check: RegExp; reason?: string }, extra: Record<string, string> = {}) {
    const result = await withAuditEvents(broker, () => exchange(subject, extra));
    expectOAuthRefusal(result, { ...expected, secrets: [subject, signatureOf(subject)].filter((value) => value.length > 0) });
  }

  it("Kubernetes token exchanged", async () => {
    const response = await exchange(await kubernetesToken(), { scope: "orders.read" });

    expect(response.status, response.text).toBe(200);
    expect(response.json.issued_token_type).toBe(ACCESS_TOKEN_TYPE);
    expect(response.json.token_type).toBe("Bearer");
    expect(response.json.scope).toBe("orders.read");
    expect(decodeJwt(response.json.access_token).sub).toBe(kubernetesAccount);
  });

  it("exchange lease records subject", async () => {
    const response = await exchange(await kubernetesToken());

    const lease = await broker.request("GET", `/v1/leases/${response.json.lease_id}`);
    expect(lease.json.grant_type).toBe(TOKEN_EXCHANGE);
    expect(lease.json.subject_issuer).toBe(KUBERNETES_ISSUER);
    expect(lease.json.subject).toBe(KUBERNETES_SUBJECT);
    expect(lease.json.client_kid).toBeNull();
    expect(lease.json.service_account_id).toBe(kubernetesAccount);
  });

  it("Kubernetes token past warnafter rejected", async () => {
    const iat = epochSeconds(broker, -7200);
    const token = await kubernetesToken({ iat, warnafter: iat + 3607 });

    await expectExchangeRefused(token, { error: "invalid_request", check: /warnafter/, reason: "warnafter" });
  });

  it("Kubernetes warnafter within clock skew accepted", async () => {
    const iat = epochSeconds(broker, -3600);
    const token = await kubernetesToken({ iat, warnafter: epochSeconds(broker, -29) });

    const response = await exchange(token);

    expect(response.status, response.text).toBe(200);
  });

  it("Kubernetes token for another audience rejected", async () => {
    const token = await kubernetesToken({ claims: { aud: ["https://kubernetes.default.svc.cluster.local", "k3s"] } });

    await expectExchangeRefused(token, { error: "invalid_request", check: /claim aud is invalid/, reason: "claim_aud" });
  });

  it("Kubernetes token with the broker among audiences accepted", async () => {
    const token = await kubernetesToken({ claims: { aud: [KUBERNETES_ISSUER, broker.deps.config.issuer] } });

    const response = await exchange(token);

    expect(response.status, response.text).toBe(200);
  });

  it("GitHub Actions token bound on repository ids", async () => {
    const response = await exchange(await githubToken());

    expect(response.status, response.text).toBe(200);
    expect(decodeJwt(response.json.access_token).sub).toBe(githubAccount);
  });

  it("GitHub numeric repository_id compared as text", async () => {
    const response = await exchange(await githubToken({ repository_id: 892431, repository_owner_id: 1342004 }));

    expect(response.status, response.text).toBe(200);
  });

  it.each([
    { case: "wrong repository_id", claims: { repository_id: "892432" } },
    { case: "wrong repository_owner_id", claims: { repository_owner_id: "1" } },
    { case: "missing repository_id", claims: { repository_id: undefined } },
    { case: "repository_id as an array", claims: { repository_id: ["892431"] } },
  ])("GitHub token with $case rejected", async ({ claims }) => {
    const token = await githubToken(claims);

    await expectExchangeRefused(token, { error: "invalid_request", check: /no service account is bound to subject/, reason: "unbound_subject" });
  });

  it("GitHub token with broker audience rejected", async () => {
    const token = await githubToken({ aud: broker.deps.config.issuer });

    await expectExchangeRefused(token, { error: "invalid_request", check: /claim aud is invalid/, reason: "claim_aud" });
  });

  it("SPIFFE JWT-SVID from a JWKS without alg accepted", async () => {
    const response = await exchange(await spiffeToken());

    expect(response.status, response.text).toBe(200);
    expect(decodeJwt(response.json.access_token).sub).toBe(spiffeAccount);
  });

  it("same subject token accepted twice", async () => {
    const svid = await spiffeToken();

    const first = await exchange(svid);
    const second = await exchange(svid);

    expect(first.status, first.text).toBe(200);
    expect(second.status, second.text).toBe(200);
    expect(second.json.lease_id).not.toBe(first.json.lease_id);
  });

  it("SPIFFE token without jti accepted", async () => {
    const svid = await spiffeToken();

    expect(decodeJwt(svid).jti).toBeUndefined();
    expect((await exchange(svid)).status).toBe(200);
  });

  it("untrusted issuer rejected", async () => {
    const stranger = await issuerKey("stranger");
    const token = await subjectToken(stranger, { iss: "https://untrusted.example.com", sub: KUBERNETES_SUBJECT });

    await expectExchangeRefused(token, { error: "invalid_request", check: /issuer https:\/\/untrusted\.example\.com is not trusted/, reason: "untrusted_issuer" });
  });

  it("token signed by a key the issuer never published rejected", async () => {
    const stranger = await issuerKey(kubernetesKey.kid);
    const token = await subjectToken(stranger, { iss: KUBERNETES_ISSUER, sub: KUBERNETES_SUBJECT });

    await expectExchangeRefused(token, { error: "invalid_request", check: /signature does not verify/, reason: "signature" });
  });

  it("unknown kid at inline issuer rejected", async () => {
    const token = await subjectToken(kubernetesKey, { iss: KUBERNETES_ISSUER, sub: KUBERNETES_SUBJECT }, { kid: "cluster-key-9" });

    await expectExchangeRefused(token, { error: "invalid_request", check: /kid matches no key of its issuer/, reason: "unknown_kid" });
  });

  it.each([
    {
      case: "alg none",
      token: async () => unsignedJwt({ alg: "none" }, { iss: KUBERNETES_ISSUER, sub: KUBERNETES_SUBJECT, aud: broker.deps.config.issuer, exp: epochSeconds(broker, 600) }),
      check: /algorithm none is not allowed/,
      reason: "algorithm",
    },
    { case: "not a JWT", token: async () => "opaque-subject-token-0123456789", check: /not a compact signed JWT/, reason: "malformed" },
    {
      case: "expired",
      token: () => subjectToken(kubernetesKey, { iss: KUBERNETES_ISSUER, sub: KUBERNETES_SUBJECT, iat: epochSeconds(broker, -700), exp: epochSeconds(broker, -60) }),
      check: /has expired/,
      reason: "expired",
    },
    {
      case: "missing exp",
      token: () => subjectToken(kubernetesKey, { iss: KUBERNETES_ISSUER, sub: KUBERNETES_SUBJECT, exp: undefined }),
      check: /claim exp is invalid/,
      reason: "claim_exp",
    },
    {
      case: "missing sub",
      token: () => subjectToken(kubernetesKey, { iss: KUBERNETES_ISSUER }),
      check: /claim sub is invalid/,
      reason: "claim_sub",
    },
    {
      case: "missing iss",
      token: () => subjectToken(kubernetesKey, { sub: KUBERNETES_SUBJECT }),
      check: /has no iss claim/,
      reason: "claim_iss",
    },
    {
      case: "issued more than a day ago",
      token: () => subjectToken(kubernetesKey, { iss: KUBERNETES_ISSUER, sub: KUBERNETES_SUBJECT, iat: epochSeconds(broker, -86_401) }),
      check: /issued more than 86400 seconds ago/,
      reason: "too_old",
    },
    {
      case: "iat in the future",
      token: () => subjectToken(kubernetesKey, { iss: KUBERNETES_ISSUER, sub: KUBERNETES_SUBJECT, iat: epochSeconds(broker, 300) }),
      check: /iat is in the future/,
      reason: "claim_iat",
    },
    {
      case: "unbound subject",
      token: () => subjectToken(kubernetesKey, { iss: KUBERNETES_ISSUER, sub: "system:serviceaccount:kube-system:default" }),
      check: /no service account is bound to subject system:serviceaccount:kube-system:default/,
      reason: "unbound_subject",
    },
  ])("subject token $case rejected", async ({ token, check, reason }) => {
    await expectExchangeRefused(await token(), { error: "invalid_request", check, reason });
  });

  it("subject bound to two accounts rejected", async () => {
    const subject = "system:serviceaccount:shared:worker";
    await bind((await createServiceAccount(broker)).id, { issuer: KUBERNETES_ISSUER, subject });
    await bind((await createServiceAccount(broker)).id, { issuer: KUBERNETES_ISSUER, subject });
    const token = await subjectToken(kubernetesKey, { iss: KUBERNETES_ISSUER, sub: subject });

    await expectExchangeRefused(token, { error: "invalid_request", check: /bound to several service accounts/, reason: "ambiguous_subject" });
  });

  it.each<{ case: string; extra: Record<string, string>; check: RegExp }>([
    { case: "unsupported subject_token_type", extra: { subject_token_type: "urn:ietf:params:oauth:token-type:saml2" }, check: /subject_token_type must be one of/ },
    { case: "missing subject_token_type", extra: { subject_token_type: "" }, check: /missing parameter subject_token_type/ },
    { case: "refresh token requested", extra: { requested_token_type: "urn:ietf:params:oauth:token-type:refresh_token" }, check: /requested_token_type must be urn:ietf:params:oauth:token-type:access_token/ },
    { case: "JWT requested", extra: { requested_token_type: JWT_TOKEN_TYPE }, check: /requested_token_type must be/ },
    { case: "bad ttl", extra: { ttl: "forever" }, check: /ttl must be a positive whole number/ },
  ])("$case rejected", async ({ extra, check }) => {
    const token = await kubernetesToken();

    await expectExchangeRefused(token, { error: "invalid_request", check }, extra);
  });

  it("missing subject_token rejected", async () => {
    const result = await withAuditEvents(broker, () => postForm(broker, "/v1/token", { grant_type: TOKEN_EXCHANGE, subject_token_type: JWT_TOKEN_TYPE }));

    expectOAuthRefusal(result, { error: "invalid_request", check: /missing parameter subject_token/ });
  });

  it.each([JWT_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:id_token", ACCESS_TOKEN_TYPE])("subject_token_type %s accepted", async (type) => {
    const response = await exchange(await kubernetesToken(), { subject_token_type: type, requested_token_type: ACCESS_TOKEN_TYPE });

    expect(response.status, response.text).toBe(200);
    expect(response.json.issued_token_type).toBe(ACCESS_TOKEN_TYPE);
  });

  it("exchange audience not allowed rejected", async () => {
    const token = await kubernetesToken();

    await expectExchangeRefused(token, { error: "invalid_target", check: /audience https:\/\/db\.payments\.example\.com is not allowed/ }, {
      audience: "https://db.payments.example.com",
    });
  });

  it("exchange scope not allowed rejected", async () => {
    const token = await kubernetesToken();

    await expectExchangeRefused(token, { error: "invalid_scope", check: /scope orders\.write is not allowed/ }, { scope: "orders.write" });
  });

  it("exchange allowed audience accepted", async () => {
    const response = await exchange(await kubernetesToken(), { audience: "https://db.orders.example.com" });

    expect(response.status, response.text).toBe(200);
    expect(decodeJwt(response.json.access_token).aud).toBe("https://db.orders.example.com");
  });

  it("exchange for suspended account rejected", async () => {
    const account = (await createServiceAccount(broker)).id;
    const subject = "system:serviceaccount:orders:suspended";
    await bind(account, { issuer: KUBERNETES_ISSUER, subject });
    await broker.request("POST", `/v1/service-accounts/${account}/suspend`, { body: { reason: "incident" } });
    const token = await subjectToken(kubernetesKey, { iss: KUBERNETES_ISSUER, sub: subject });

    await expectExchangeRefused(token, { error: "invalid_request", check: /is suspended/, reason: "account_suspended" });
  });

  describe("issuer with a remote JWKS", () => {
    let jwks: JwksServer;
    let first: IssuerKey;
    let account: string;
    const subject = "system:serviceaccount:payments:ledger";
    const servers: JwksServer[] = [];

    beforeAll(async () => {
      first = await issuerKey("remote-key-1");
      account = (await createServiceAccount(broker)).id;
      jwks = await remoteIssuer([first.publicJwk]);
    });

    afterAll(async () => {
      await Promise.all(servers.map((server) => server.close()));
    });

    /** Starts a JWKS server publishing `keys`, trusts it as an issuer and binds its `subject` to the account. */
    async function remoteIssuer(keys: JWK[]): Promise<JwksServer> {
      const server = await startJwksServer(keys);
      servers.push(server);
      await trustIssuer({ issuer: server.issuer, jwks_uri: server.jwksUri });
      await bind(account, { issuer: server.issuer, subject });
      return server;
    }

    function remoteToken(key: IssuerKey, server = jwks): Promise<string> {
      return subjectToken(key, { iss: server.issuer, sub: subject });
    }

    it("loopback HTTP jwks_uri used", async () => {
      const response = await exchange(await remoteToken(first));

      expect(response.status, response.text).toBe(200);
      expect(decodeJwt(response.json.access_token).sub).toBe(account);
      expect(jwks.fetches).toBe(1);
    });

    it("remote jwt-svid key without alg accepted", async () => {
      const spire = await issuerKey("spire-remote-1");
      const { alg: _alg, ...withoutAlg } = spire.publicJwk;
      const server = await remoteIssuer([{ ...withoutAlg, use: "jwt-svid" }]);

      const response = await exchange(await remoteToken(spire, server));

      expect(response.status, response.text).toBe(200);
      expect(decodeJwt(response.json.access_token).sub).toBe(account);
    });

    it("cached JWKS serves later tokens", async () => {
      const before = jwks.fetches;

      await exchange(await remoteToken(first));
      await exchange(await remoteToken(first));

      expect(jwks.fetches).toBe(before);
    });

    // jose refetches a JWKS for an unknown kid at most once per 30-second cooldown, timed
    // by Date. These tests freeze Date, so that only setSystemTime moves it.
    it("rotated key fetched once after cooldown", async () => {
      vi.useFakeTimers({ toFake: ["Date"] });
      const rotating = await remoteIssuer([first.publicJwk]);
      const second = await issuerKey("remote-key-2");
      const beforeRotation = await exchange(await remoteToken(first, rotating));
      rotating.keys = [first.publicJwk, second.publicJwk];

      const duringCooldown = await exchange(await remoteToken(second, rotating));
      vi.setSystemTime(Date.now() + 31_000);
      const afterCooldown = await exchange(await remoteToken(second, rotating));
      const again = await exchange(await remoteToken(second, rotating));

      expect(beforeRotation.status, beforeRotation.text).toBe(200);
      expect(duringCooldown.json.error).toBe("invalid_request");
      expect(duringCooldown.json.error_description).toMatch(/kid matches no key of its issuer/);
      expect(afterCooldown.status, afterCooldown.text).toBe(200);
      expect(again.status, again.text).toBe(200);
      expect(rotating.fetches).toBe(2);
    });

    it("unknown kid refetches once", async () => {
      vi.useFakeTimers({ toFake: ["Date"] });
      const server = await remoteIssuer([first.publicJwk]);
      const never = await issuerKey("remote-key-never-published");
      await exchange(await remoteToken(first, server));
      vi.setSystemTime(Date.now() + 31_000);

      const firstTry = await exchange(await remoteToken(never, server));
      const secondTry = await exchange(await remoteToken(never, server));

      expect(firstTry.json.error).toBe("invalid_request");
      expect(firstTry.json.error_description).toMatch(/kid matches no key of its issuer/);
      expect(secondTry.json.error).toBe("invalid_request");
      expect(server.fetches).toBe(2);
    });

  it("unreachable JWKS rejected without server error", async () => {
      const down = await startJwksServer([]);
      await down.close();
      await trustIssuer({ issuer: down.issuer, jwks_uri: down.jwksUri });
      await bind(account, { issuer: down.issuer, subject });
      const token = await subjectToken(first, { iss: down.issuer, sub: subject });

      await expectExchangeRefused(token, { error: "invalid_request", check: /subject_token could not be verified/, reason: "verification" });
    });
  });
});
