import { generateKeyPairSync, randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BrokerUnavailableError, createClient, federatedToken, InvalidConfiguration, OAuthError, privateKeyJwt, type ClientOptions } from "../../sdk/index.js";
import { connectionRefused, expectAdmin, ManualClock, READ_SCOPE, recordingFetch, registerWorkload, type SdkBroker, type SdkWorkload, SdkClients, startSdkBroker, unavailable } from "./sdk-fixtures.js";

const TOKEN_PATH = /^\/v1\/token$/;

/** Decodes the claims of a JWT without verifying it. */
function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8"));
}

function assertionsIn(bodies: string[]): Record<string, unknown>[] {
  return bodies.map((body) => claimsOf(new URLSearchParams(body).get("client_assertion")!));
}

describe("SDK access tokens against a broker process", () => {
  let broker: SdkBroker;
  let workload: SdkWorkload;

  const clients = new SdkClients(() => ({ broker, workload }));
  const client = (options: Partial<ClientOptions> = {}) => clients.create(options);

  beforeAll(async () => {
    broker = await startSdkBroker();
    workload = await registerWorkload(broker);
  });

  afterAll(async () => {
    await clients.closeAll();
    await broker?.process.cleanup();
  });

  it("answers a cached token without a request", async () => {
    const recorder = recordingFetch();
    const sdk = client({ fetch: recorder.fetch });

    const first = await sdk.getAccessToken({ scope: READ_SCOPE });
    const second = await sdk.getAccessToken({ scope: READ_SCOPE });

    expect(second.accessToken).toBe(first.accessToken);
    expect(recorder.count("POST", TOKEN_PATH)).toBe(1);
    expect(claimsOf(first.accessToken)).toMatchObject({ sub: workload.accountId, client_id: workload.accountId, scope: READ_SCOPE });
    expect(first.leaseId).toMatch(/^lease_/);
  });

  it("shares one request among 50 concurrent callers", async () => {
    const recorder = recordingFetch();
    const sdk = client({ fetch: recorder.fetch });

    const tokens = await Promise.all(Array.from({ length: 50 }, () => sdk.getAccessToken({ scope: READ_SCOPE })));

    expect(new Set(tokens.map((token) => token.accessToken)).size).toBe(1);
    expect(recorder.count("POST", TOKEN_PATH)).toBe(1);
    expect(recorder.count("GET", /oauth-authorization-server$/)).toBe(1);
  });

  it("keeps one entry per scope set, whatever the order of the scopes", async () => {
    const recorder = recordingFetch();
    const sdk = client({ fetch: recorder.fetch });

    const both = await sdk.getAccessToken({ scope: `${READ_SCOPE} db:orders` });
    const reordered = await sdk.getAccessToken({ scope: ["db:orders", READ_SCOPE] });
    const one = await sdk.getAccessToken({ scope: READ_SCOPE });

    expect(reordered.accessToken).toBe(both.accessToken);
    expect(one.accessToken).not.toBe(both.accessToken);
    expect(recorder.count("POST", TOKEN_PATH)).toBe(2);
  });

  it("refreshes after two thirds of the lifetime, and not before", async () => {
    const clock = new ManualClock();
    const recorder = recordingFetch();
    const sdk = client({ fetch: recorder.fetch, clock });
    const first = await sdk.getAccessToken();
    const lifetimeMs = first.expiresAt.getTime() - clock.now();

    clock.advance(Math.floor(lifetimeMs * (2 / 3)) - 1000);
    expect((await sdk.getAccessToken()).accessToken).toBe(first.accessToken);
    clock.advance(2000);
    const refreshed = await sdk.getAccessToken();

    expect(refreshed.accessToken).not.toBe(first.accessToken);
    expect(recorder.count("POST", TOKEN_PATH)).toBe(2);
  });

  it("honours a configured refresh ratio", async () => {
    const clock = new ManualClock();
    const recorder = recordingFetch();
    const sdk = client({ fetch: recorder.fetch, clock, refreshRatio: 0.5 });
    const first = await sdk.getAccessToken();

    clock.advance((first.expiresAt.getTime() - clock.now()) / 2 + 1000);

    expect((await sdk.getAccessToken()).accessToken).not.toBe(first.accessToken);
  });

  it("uses a fresh jti per assertion", async () => {
    let failures = 1;
    const recorder = recordingFetch((request) => (TOKEN_PATH.test(request.path) && failures-- > 0 ? unavailable("0") : undefined));
    const clock = new ManualClock();
    const sdk = client({ fetch: recorder.fetch, clock });

    await sdk.getAccessToken();
    clock.advance(24 * 3600 * 1000);
    await sdk.getAccessToken();

    const assertions = assertionsIn(recorder.seen.filter((request) => TOKEN_PATH.test(request.path)).map((request) => request.body));
    expect(assertions).toHaveLength(3);
    expect(new Set(assertions.map((claims) => claims["jti"])).size).toBe(3);
    for (const claims of assertions) {
      expect(claims).toMatchObject({ iss: workload.accountId, sub: workload.accountId, aud: broker.address });
    }
  });

  it("serves stale tokens only until expiry", async () => {
    let down = false;
    const fetchDown = recordingFetch(() => (down ? connectionRefused() : undefined)).fetch;
    const clock = new ManualClock();
    const strict = client({ fetch: fetchDown, clock, retry: { maxAttempts: 2 } });
    const lenient = client({ fetch: fetchDown, clock, retry: { maxAttempts: 2 }, staleWhileBrokerDown: true });
    const strictToken = await strict.getAccessToken();
    const lenientToken = await lenient.getAccessToken();
    const lifetimeMs = lenientToken.expiresAt.getTime() - clock.now();

    down = true;
    clock.advance(lifetimeMs * 0.9);
    await expect(strict.getAccessToken()).rejects.toBeInstanceOf(BrokerUnavailableError);
    expect((await lenient.getAccessToken()).accessToken).toBe(lenientToken.accessToken);

    clock.advance(lifetimeMs * 0.1 + 1);
    const error = await lenient.getAccessToken().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BrokerUnavailableError);
    expect(String((error as Error).message)).toContain("ECONNREFUSED");
    expect(String((error as Error).message)).not.toContain(strictToken.accessToken);
  });

  it("does not retry invalid_client", async () => {
    const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const recorder = recordingFetch();
    const sdk = client({ identity: privateKeyJwt({ clientId: workload.accountId, key: stranger, kid: workload.kid }), fetch: recorder.fetch });

    const error = await sdk.getAccessToken().catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(OAuthError);
    expect(error).toMatchObject({ error: "invalid_client", status: 401, retryable: false });
    expect(recorder.count("POST", TOKEN_PATH)).toBe(1);
    const assertion = new URLSearchParams(recorder.seen.find((request) => TOKEN_PATH.test(request.path))!.body).get("client_assertion")!;
    expect((error as Error).message).not.toContain(assertion);
  });

  it("reports a scope outside the account's allowed scopes as invalid_scope", async () => {
    const error = await client().getAccessToken({ scope: "admin:everything" }).catch((caught: unknown) => caught);

    expect(error).toMatchObject({ code: "oauth_error", error: "invalid_scope", retryable: false });
  });

  it("retries 429 after the Retry-After the broker sent", async () => {
    let throttled = 1;
    const throttle = () => new Response(JSON.stringify({ error: "slow_down", error_description: "too many requests" }), { status: 429, headers: { "retry-after": "2" } });
    const clock = new ManualClock();
    const recorder = recordingFetch((request) => (TOKEN_PATH.test(request.path) && throttled-- > 0 ? throttle() : undefined));
    const sdk = client({ fetch: recorder.fetch, clock });

    await sdk.getAccessToken();

    expect(clock.sleeps).toEqual([2000]);
    expect(recorder.count("POST", TOKEN_PATH)).toBe(2);
  });

  it("stops retrying once the attempts run out", async () => {
    const clock = new ManualClock();
    const recorder = recordingFetch((request) => (TOKEN_PATH.test(request.path) ? unavailable() : undefined));
    const sdk = client({ fetch: recorder.fetch, clock, retry: { maxAttempts: 3, baseDelayMs: 100 } });

    const error = await sdk.getAccessToken().catch((caught: unknown) => caught);

    expect(error).toMatchObject({ code: "broker_problem", status: 503, problemCode: "upstream_unavailable", retryable: true });
    expect(recorder.count("POST", TOKEN_PATH)).toBe(3);
    expect(clock.sleeps).toHaveLength(2);
    expect(clock.sleeps[0]).toBeGreaterThanOrEqual(50);
    expect(clock.sleeps[0]).toBeLessThanOrEqual(150);
    expect(clock.sleeps[1]).toBeGreaterThanOrEqual(100);
    expect(clock.sleeps[1]).toBeLessThanOrEqual(300);
  });

  it("gives up at once on a Retry-After longer than the configured maximum", async () => {
    const clock = new ManualClock();
    const recorder = recordingFetch((request) => (TOKEN_PATH.test(request.path) ? unavailable("3600") : undefined));
    const sdk = client({ fetch: recorder.fetch, clock });

    await expect(sdk.getAccessToken()).rejects.toMatchObject({ status: 503 });
    expect(recorder.count("POST", TOKEN_PATH)).toBe(1);
    expect(clock.sleeps).toEqual([]);
  });

  it("refuses calls after close", async () => {
    const sdk = client();
    await sdk.close();

    await expect(sdk.getAccessToken()).rejects.toMatchObject({ code: "client_closed" });
  });

  it("exchanges a platform token read from its file on every exchange", async () => {
    const platform = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const issuer = `https://${randomUUID()}.platform.example`;
    const subject = `system:serviceaccount:orders:${randomUUID()}`;
    await expectAdmin(broker, 201, "POST", "/v1/trusted-issuers", { issuer, jwks: { keys: [{ ...platform.publicKey.export({ format: "jwk" }), kid: "k1", alg: "ES256" }] } });
    await expectAdmin(broker, 201, "POST", `/v1/service-accounts/${workload.accountId}/federated-subjects`, { issuer, subject });
    const platformToken = (sub: string) =>
      new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "k1" }).setIssuer(issuer).setSubject(sub).setAudience(broker.address).setIssuedAt().setExpirationTime("10m").sign(platform.privateKey);
    const directory = await mkdtemp(path.join(tmpdir(), "sdk-token-"));
    const tokenFile = path.join(directory, "token");
    const clock = new ManualClock();
    const sdk = client({ identity: federatedToken({ tokenFile }), clock });

    try {
      await writeFile(tokenFile, `${await platformToken(subject)}\n`);
      const first = await sdk.getAccessToken();
      expect(claimsOf(first.accessToken)).toMatchObject({ sub: workload.accountId });

      // The kubelet rewrote the file with a token for another subject: the next exchange must read it.
      await writeFile(tokenFile, await platformToken("system:serviceaccount:other:intruder"));
      clock.advance(first.expiresAt.getTime() - clock.now());
      await expect(sdk.getAccessToken()).rejects.toMatchObject({ code: "oauth_error", retryable: false });

      await writeFile(tokenFile, await platformToken(subject));
      expect(claimsOf((await sdk.getAccessToken()).accessToken)).toMatchObject({ sub: workload.accountId });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it("reads the subject token per exchange", async () => {
    let calls = 0;
    const sdk = client({ identity: federatedToken({ getToken: () => (calls++, "") }) });
    await expect(sdk.getAccessToken()).rejects.toThrow(/subject token is empty/);
    await expect(sdk.getAccessToken()).rejects.toThrow(/subject token is empty/);
    expect(calls).toBe(2);

    const missing = client({ identity: federatedToken({ tokenFile: "/nonexistent/token" }) });
    await expect(missing.getAccessToken()).rejects.toThrow("cannot read the token file /nonexistent/token (ENOENT)");
  });

  it.each([
    ["a missing client id", () => privateKeyJwt({ clientId: "", key: workload.privateJwk as any }), /clientId is required/],
    ["a public JWK", () => privateKeyJwt({ clientId: "sa_x", key: { ...workload.privateJwk, d: undefined } as any }), /public JWK/],
    ["a public key object", () => privateKeyJwt({ clientId: "sa_x", key: generateKeyPairSync("ed25519").publicKey }), /public key/],
    ["an RSA key under 2048 bits", () => privateKeyJwt({ clientId: "sa_x", key: generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey }), /at least 2048 bits/],
    ["a P-384 key", () => privateKeyJwt({ clientId: "sa_x", key: generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey }), /P-256, Ed25519 or RSA/],
    ["a PEM that is not a key", () => privateKeyJwt({ clientId: "sa_x", key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----" }), /not a readable private key/],
    ["an assertion lifetime over 300 s", () => privateKeyJwt({ clientId: "sa_x", key: workload.privateJwk as any, assertionLifetimeSeconds: 301 }), /assertionLifetimeSeconds/],
    ["a broker URL that is not a URL", () => createClient({ broker: "broker.internal", identity: privateKeyJwt({ clientId: "sa_x", key: workload.privateJwk as any }) }), /absolute http or https URL/],
    ["a broker URL with credentials", () => createClient({ broker: "http://user:pw@127.0.0.1", identity: privateKeyJwt({ clientId: "sa_x", key: workload.privateJwk as any }) }), /credentials in the URL/],
    ["a refresh ratio of 1", () => createClient({ broker: broker.address, identity: privateKeyJwt({ clientId: "sa_x", key: workload.privateJwk as any }), refreshRatio: 1 }), /refreshRatio/],
    ["no identity", () => createClient({ broker: broker.address } as any), /identity is required/],
    ["both a token file and getToken", () => federatedToken({ tokenFile: "/var/run/token", getToken: () => "x" }), /exactly one of tokenFile or getToken/],
    ["neither a token file nor getToken", () => federatedToken({}), /exactly one of tokenFile or getToken/],
  ])("rejects %s at construction", (_name, build, message) => {
    expect(build).toThrow(InvalidConfiguration);
    expect(build).toThrow(message);
  });
});
