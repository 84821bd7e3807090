import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { BrokerProblemError, BrokerUnavailableError, type ClientOptions, type Credential, createClient, privateKeyJwt } from "../../sdk/index.js";
import {
  activeLeases,
  expectAdmin,
  grantedSecret,
  ManualClock,
  READ_SCOPE,
  readLease,
  recordingFetch,
  unavailable,
  registerWorkload,
  type SdkBroker,
  type SdkWorkload,
  SdkClients,
  startSdkBroker,
} from "./sdk-fixtures.js";

const CREDENTIALS_PATH = /^\/v1\/credentials$/;
const RENEW_PATH = /^\/v1\/leases\/lease_[0-9a-f]+\/renew$/;
const TTL = 60;
/** Past two thirds of the 60 s TTL, before expiry. */
const PAST_REFRESH_MS = 45_000;

describe("SDK credentials against a broker process", () => {
  let broker: SdkBroker;
  let workload: SdkWorkload;
  const debugEvents: string[] = [];

  const clients = new SdkClients(() => ({ broker, workload }), { debug: (event, fields) => debugEvents.push(JSON.stringify({ event, ...fields })) });
  const client = (options: Partial<ClientOptions> = {}) => clients.create(options);

  beforeAll(async () => {
    broker = await startSdkBroker();
    workload = await registerWorkload(broker);
  });

  afterAll(async () => {
    await clients.closeAll();
    await broker?.process.cleanup();
  });

  it("issues a credential once and answers later calls from the cache", async () => {
    const secret = await grantedSecret(broker, workload.accountId);
    const recorder = recordingFetch();
    const sdk = client({ fetch: recorder.fetch });

    const first = await sdk.getCredential(secret.name, { scope: READ_SCOPE, ttl: TTL });
    const second = await sdk.getCredential(secret.name);

    expect(second).toBe(first);
    expect(first).toMatchObject({ secret: secret.name, version: "1", renewable: true });
    expect(first.data["value"]).toHaveLength(32);
    expect(recorder.count("POST", CREDENTIALS_PATH)).toBe(1);
    expect((await readLease(broker, first.leaseId)).status).toBe("active");
  });

  it("renews the lease before it expires, while the credential is held", async () => {
    const secret = await grantedSecret(broker, workload.accountId);
    const clock = new ManualClock();
    const recorder = recordingFetch();
    const sdk = client({ fetch: recorder.fetch, clock });
    const credential = await sdk.getCredential(secret.name, { scope: READ_SCOPE, ttl: TTL });
    const before = await readLease(broker, credential.leaseId);

    clock.advance(30_000);
    expect(recorder.count("POST", RENEW_PATH)).toBe(0);
    clock.advance(11_000);

    await vi.waitFor(() => expect(recorder.count("POST", RENEW_PATH)).toBe(1));
    const after = await vi.waitFor(async () => {
      const lease = await readLease(broker, credential.leaseId);
      expect(lease.renew_count).toBe(1);
      return lease;
    });
    expect(Date.parse(after.expires_at)).toBeGreaterThan(Date.parse(before.expires_at));
    expect((await sdk.getCredential(secret.name)).leaseId).toBe(credential.leaseId);
    expect(recorder.count("POST", CREDENTIALS_PATH)).toBe(1);
  });

  it("re-issues a credential whose lease an operator revoked", async () => {
    const secret = await grantedSecret(broker, workload.accountId);
    const clock = new ManualClock();
    const sdk = client({ clock });
    const first = await sdk.getCredential(secret.name, { scope: READ_SCOPE, ttl: TTL });

    await expectAdmin(broker, 200, "POST", `/v1/leases/${first.leaseId}/revoke`, { reason: "suspected leak" });
    clock.advance(PAST_REFRESH_MS);

    const second = await vi.waitFor(async () => {
      const current = await sdk.getCredential(secret.name);
      expect(current.leaseId).not.toBe(first.leaseId);
      return current;
    });
    expect((await readLease(broker, second.leaseId)).status).toBe("active");
    expect((await readLease(broker, first.leaseId)).status).toBe("revoked");
  });

  it("picks up a rotation at the next renewal and tells watchers", async () => {
    const secret = await grantedSecret(broker, workload.accountId);
    const clock = new ManualClock();
    const sdk = client({ clock, retireGraceMs: 5_000 });
    const seen: Credential[] = [];
    sdk.watch(secret.name, (credential) => seen.push(credential), { scope: READ_SCOPE, ttl: TTL });
    await vi.waitFor(() => expect(seen).toHaveLength(1));

    const rotation = await expectAdmin(broker, 202, "POST", `/v1/secrets/${secret.id}/rotate`, { reason: "quarterly" });
    await vi.waitFor(async () => expect((await expectAdmin(broker, 200, "GET", `/v1/rotations/${rotation.id}`)).status).toBe("completed"), { timeout: 15_000 });
    clock.advance(PAST_REFRESH_MS);

    await vi.waitFor(() => expect(seen).toHaveLength(2));
    expect(seen[1]).toMatchObject({ version: "2" });
    expect(seen[1]!.data["value"]).not.toBe(seen[0]!.data["value"]);
    expect(seen[1]!.leaseId).not.toBe(seen[0]!.leaseId);

    clock.advance(5_000);
    await vi.waitFor(async () => expect((await readLease(broker, seen[0]!.leaseId)).status).toBe("revoked"));
  });

  it("re-issues instead of renewing a lease that reached its max TTL", async () => {
    const secret = await grantedSecret(broker, workload.accountId, { max_ttl: TTL });
    const clock = new ManualClock();
    const recorder = recordingFetch();
    const sdk = client({ clock, fetch: recorder.fetch });
    const first = await sdk.getCredential(secret.name, { scope: READ_SCOPE, ttl: TTL });
    expect(first.renewable).toBe(false);

    clock.advance(PAST_REFRESH_MS);

    await vi.waitFor(() => expect(recorder.count("POST", CREDENTIALS_PATH)).toBe(2));
    const second = await sdk.getCredential(secret.name);
    expect(second.leaseId).not.toBe(first.leaseId);
    expect(second.data).toEqual(first.data);
    expect(recorder.count("POST", RENEW_PATH)).toBe(0);
  });

  it("forgets a credential the application reports rejected", async () => {
    const secret = await grantedSecret(broker, workload.accountId);
    const sdk = client({ retireGraceMs: 0 });
    const first = await sdk.getCredential(secret.name, { scope: READ_SCOPE });

    sdk.invalidate(secret.name);
    const second = await sdk.getCredential(secret.name);

    expect(second.leaseId).not.toBe(first.leaseId);
    await vi.waitFor(async () => expect((await readLease(broker, first.leaseId)).status).toBe("revoked"));
  });

  it("release revokes the lease and stops renewing", async () => {
    const secret = await grantedSecret(broker, workload.accountId);
    const clock = new ManualClock();
    const recorder = recordingFetch();
    const sdk = client({ clock, fetch: recorder.fetch });
    const credential = await sdk.getCredential(secret.name, { scope: READ_SCOPE, ttl: TTL });

    await sdk.release(secret.name);
    clock.advance(PAST_REFRESH_MS);

    expect((await readLease(broker, credential.leaseId)).status).toBe("revoked");
    expect(recorder.count("POST", RENEW_PATH)).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it("does not retry no_grant", async () => {
    const ungranted = await expectAdmin(broker, 201, "POST", "/v1/secrets", { name: "sdk/ungranted", adapter: "local", kind: "static", owner: "team-payments", generate: { length: 16 } });
    const recorder = recordingFetch();
    const sdk = client({ fetch: recorder.fetch });

    const error = await sdk.getCredential(ungranted.name, { scope: READ_SCOPE }).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(BrokerProblemError);
    expect(error).toMatchObject({ status: 403, problemCode: "no_grant", type: "urn:secrets-broker:problem:no-grant", retryable: false });
    expect(recorder.count("POST", CREDENTIALS_PATH)).toBe(1);
  });

  it("replaces an access token whose lease was revoked, and re-issues its credentials", async () => {
    const secret = await grantedSecret(broker, workload.accountId);
    const clock = new ManualClock();
    const sdk = client({ clock });
    const first = await sdk.getCredential(secret.name, { scope: READ_SCOPE, ttl: TTL });
    const token = await sdk.getAccessToken({ scope: READ_SCOPE });

    await expectAdmin(broker, 200, "POST", `/v1/leases/${token.leaseId}/revoke`, { reason: "token leaked" });
    clock.advance(PAST_REFRESH_MS);

    await vi.waitFor(async () => expect((await sdk.getCredential(secret.name)).leaseId).not.toBe(first.leaseId));
    expect((await sdk.getAccessToken({ scope: READ_SCOPE })).accessToken).not.toBe(token.accessToken);
  });

  it("survives a broker restart, serving the unexpired credential meanwhile when asked to", async () => {
    const secret = await grantedSecret(broker, workload.accountId);
    const clock = new ManualClock();
    const options = { clock, retry: { maxAttempts: 2 } };
    const strict = client(options);
    const lenient = client({ ...options, staleWhileBrokerDown: true });
    const strictCredential = await strict.getCredential(secret.name, { scope: READ_SCOPE, ttl: TTL });
    const lenientCredential = await lenient.getCredential(secret.name, { scope: READ_SCOPE, ttl: TTL });

    await broker.process.stop();
    try {
      expect(await strict.getCredential(secret.name)).toBe(strictCredential);
      clock.advance(PAST_REFRESH_MS);
      await expect(strict.getCredential(secret.name)).rejects.toBeInstanceOf(BrokerUnavailableError);
      expect((await lenient.getCredential(secret.name)).leaseId).toBe(lenientCredential.leaseId);
    } finally {
      await broker.process.restart();
    }

    const renewed = await strict.getCredential(secret.name);
    expect(renewed.leaseId).toBe(strictCredential.leaseId);
    expect((await readLease(broker, renewed.leaseId)).renew_count).toBe(1);
  });

  it("close revokes every lease it holds and leaves no timer", async () => {
    const account = await registerWorkload(broker);
    const first = await grantedSecret(broker, account.accountId);
    const second = await grantedSecret(broker, account.accountId);
    const clock = new ManualClock();
    const sdk = createClient({ broker: broker.address, identity: privateKeyJwt({ clientId: account.accountId, key: account.privateJwk as any }), clock });
    await sdk.getCredential(first.name, { scope: READ_SCOPE });
    await sdk.getCredential(second.name, { scope: READ_SCOPE });
    expect(await activeLeases(broker, account.accountId)).toHaveLength(3);

    const result = await sdk.close();

    expect(result).toEqual({ revoked: 3, failed: 0 });
    expect(await activeLeases(broker, account.accountId)).toEqual([]);
    expect(clock.pending()).toBe(0);
  });

  it("close revokes access tokens of every audience", async () => {
    const audience = "https://db.orders.example";
    const account = await registerWorkload(broker, { allowed_audiences: [audience] });
    const sdk = createClient({ broker: broker.address, identity: privateKeyJwt({ clientId: account.accountId, key: account.privateJwk as any }) });
    await sdk.getAccessToken({ audience });
    expect(await activeLeases(broker, account.accountId)).toHaveLength(1);

    const result = await sdk.close();

    // The audience token cannot call the broker, so close requests a broker token to revoke it, and revokes that too.
    expect(result).toEqual({ revoked: 2, failed: 0 });
    expect(await activeLeases(broker, account.accountId)).toEqual([]);
  });

  it("close revokes its broker token last", async () => {
    const audience = "https://db.orders.example";
    const account = await registerWorkload(broker, { allowed_audiences: [audience] });
    const secret = await grantedSecret(broker, account.accountId);
    const sdk = createClient({ broker: broker.address, identity: privateKeyJwt({ clientId: account.accountId, key: account.privateJwk as any }) });
    await sdk.getCredential(secret.name, { scope: READ_SCOPE });
    await sdk.getAccessToken({ audience });

    const result = await sdk.close();

    expect(result).toEqual({ revoked: 3, failed: 0 });
    expect(await activeLeases(broker, account.accountId)).toEqual([]);
  });

  it("close aborts a pending retry", async () => {
    const account = await registerWorkload(broker);
    const secret = await grantedSecret(broker, account.accountId);
    let closedAt = Number.POSITIVE_INFINITY;
    const recorder = recordingFetch((request) => (CREDENTIALS_PATH.test(request.path) ? unavailable("5") : undefined));
    const sdk = createClient({ broker: broker.address, identity: privateKeyJwt({ clientId: account.accountId, key: account.privateJwk as any }), fetch: recorder.fetch });
    const pending = sdk.getCredential(secret.name, { scope: READ_SCOPE }).catch((error: unknown) => error);
    await vi.waitFor(() => expect(recorder.count("POST", CREDENTIALS_PATH)).toBe(1));

    const started = Date.now();
    await sdk.close();
    closedAt = recorder.seen.length;

    expect(await pending).toMatchObject({ code: "client_closed" });
    expect(Date.now() - started).toBeLessThan(4000);
    expect(recorder.seen.slice(closedAt).filter((request) => request.path !== "/v1/token")).toEqual([]);
    expect(recorder.count("POST", CREDENTIALS_PATH)).toBe(1);
    expect(await activeLeases(broker, account.accountId)).toEqual([]);
  });

  it("keeps tokens and values out of debug events and error messages", async () => {
    const secret = await grantedSecret(broker, workload.accountId);
    const sdk = client();
    const credential = await sdk.getCredential(secret.name, { scope: READ_SCOPE });
    const token = await sdk.getAccessToken({ scope: READ_SCOPE });
    const error = await sdk.getCredential("sdk/missing", { scope: READ_SCOPE }).catch((caught: unknown) => caught);

    const output = [...debugEvents, String(error), JSON.stringify(error)].join("\n");
    expect(debugEvents.some((event) => event.includes(credential.leaseId))).toBe(true);
    expect(output).not.toContain(credential.data["value"]);
    expect(output).not.toContain(token.accessToken);
  });
});
