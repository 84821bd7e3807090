import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sweepExpiredLeases } from "../../broker/leases/expiry-sweep.js";
import { retryUpstreamRevocations, upstreamRevokeDelayMs } from "../../broker/leases/upstream-revoker.js";
import { auditEvents, expectProblem, rowCount } from "../support/register-fixtures.js";
import { RecordingAdapter, upstreamDown } from "../support/recording-adapter.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { createGrant, createSecret, obtainCredential, readLease, requestCredential, workloadWithToken } from "./credential-fixtures.js";

let broker: TestBroker;
const upstream = new RecordingAdapter();

beforeAll(async () => {
  broker = await startTestBroker({ adapters: [upstream], config: { adapterTimeoutMs: 300 } });
});

afterAll(async () => {
  await broker?.close();
});

beforeEach(() => {
  upstream.failIssue = undefined;
  upstream.failRenew = undefined;
  upstream.failRevoke = undefined;
  upstream.duringIssue = undefined;
});

/** Creates a workload with a token and a grant for a new dynamic secret of the recording adapter. */
async function dynamicSetup(): Promise<{ accessToken: string; secret: any; grant: any; accountId: string }> {
  const { workload, accessToken } = await workloadWithToken(broker);
  const secret = await createSecret(broker, { adapter: "recording", kind: "dynamic", generate: undefined, settings: { label: "orders" } });
  const grant = await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });
  return { accessToken, secret, grant, accountId: workload.accountId };
}

describe("dynamic credentials through the adapter contract", () => {
  it("lease revoke reaches the upstream", async () => {
    const { accessToken, secret } = await dynamicSetup();
    const credential = await obtainCredential(broker, accessToken, { secret: secret.name, ttl: 600 });
    const lease = await readLease(broker, credential.lease_id);
    expect(credential.version).toBeNull();
    expect(lease.upstream_lease_id).toBe(credential.data.username);
    expect(upstream.live.has(lease.upstream_lease_id)).toBe(true);

    const revoked = await broker.request("POST", `/v1/leases/${credential.lease_id}/revoke`, { token: broker.tokens.operator });

    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.json.upstream).toEqual({ revoked: 1, failed: 0, pending: 0 });
    expect(upstream.live.has(lease.upstream_lease_id)).toBe(false);
    expect((await readLease(broker, credential.lease_id)).upstream_revoke).toMatchObject({ state: "done", attempts: 1 });
    const events = (await auditEvents(broker, "action=lease.upstream_revoke")).filter((event) => event.target === credential.lease_id);
    expect(events.map((event) => event.outcome)).toEqual(["success"]);
  });

  it("renew moves the upstream expiry", async () => {
    const { accessToken, secret } = await dynamicSetup();
    const credential = await obtainCredential(broker, accessToken, { secret: secret.name, ttl: 120 });
    const before = await readLease(broker, credential.lease_id);

    const renewed = await broker.request("POST", `/v1/leases/${credential.lease_id}/renew`, { token: accessToken, body: { increment: 300 } });
    expect(renewed.status, renewed.text).toBe(200);
    expect(upstream.live.get(before.upstream_lease_id)?.toISOString()).toBe(renewed.json.expires_at);

    upstream.failRenew = upstreamDown();
    const refused = await broker.request("POST", `/v1/leases/${credential.lease_id}/renew`, { token: accessToken, body: { increment: 600 } });
    expectProblem(refused, 503, "upstream_unavailable");
    expect(refused.headers.get("retry-after")).toBe("5");
    expect((await readLease(broker, credential.lease_id)).expires_at).toBe(renewed.json.expires_at);
  });

  it("upstream down at issue gives 503", async () => {
    const { accessToken, secret } = await dynamicSetup();
    upstream.failIssue = upstreamDown();
    const before = await rowCount(broker, "leases");

    expectProblem(await requestCredential(broker, accessToken, { secret: secret.name }), 503, "upstream_unavailable");
    expect(await rowCount(broker, "leases")).toBe(before);
  });

  it("slow upstream gives 504 and late credential is revoked", async () => {
    const { accessToken, secret } = await dynamicSetup();
    const liveBefore = upstream.live.size;
    let release: () => void = () => undefined;
    upstream.duringIssue = () => new Promise<void>((resolve) => (release = resolve));

    expectProblem(await requestCredential(broker, accessToken, { secret: secret.name }), 504, "upstream_timeout");
    expect(upstream.live.size).toBe(liveBefore + 1);
    release();
    for (let waited = 0; upstream.live.size > liveBefore && waited < 2_000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(upstream.live.size).toBe(liveBefore);
  });

  it("lost race revokes the orphan credential", async () => {
    const { accessToken, secret, grant } = await dynamicSetup();
    upstream.duringIssue = async () => {
      const revoked = await broker.request("POST", `/v1/grants/${grant.id}/revoke`, { token: broker.tokens.operator });
      expect(revoked.status).toBe(200);
    };
    const liveBefore = upstream.live.size;

    const refused = await requestCredential(broker, accessToken, { secret: secret.name });

    expectProblem(refused, 409, "invalid_state");
    expect(upstream.live.size).toBe(liveBefore);
    expect(upstream.calls.at(-1)?.operation).toBe("revoke");
  });
});

describe("failed upstream revocations", () => {
  it("failed revoke is listed and retried with backoff", async () => {
    const { accessToken, secret } = await dynamicSetup();
    const credential = await obtainCredential(broker, accessToken, { secret: secret.name });
    upstream.failRevoke = upstreamDown();

    const started = performance.now();
    const revoked = await broker.request("POST", `/v1/leases/${credential.lease_id}/revoke`, { token: broker.tokens.operator });
    expect(revoked.status, revoked.text).toBe(200);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(revoked.json.upstream).toEqual({ revoked: 0, failed: 1, pending: 0 });

    const failed = await readLease(broker, credential.lease_id);
    expect(failed.status).toBe("revoke_failed");
    expect(failed.upstream_revoke).toMatchObject({ state: "failed", attempts: 1, last_error: "recording upstream is unreachable" });
    const delay = Date.parse(failed.upstream_revoke.next_attempt_at) - broker.clock.now().getTime();
    expect(delay).toBeGreaterThanOrEqual(5_000);
    expect(delay).toBeLessThanOrEqual(15_000);
    const listed = await broker.request("GET", "/v1/leases?status=revoke_failed", { token: broker.tokens.auditor });
    expect(listed.json.items.map((lease: { id: string }) => lease.id)).toContain(credential.lease_id);

    expect(await retryUpstreamRevocations(broker.deps)).toEqual({ revoked: 0, failed: 0, pending: 0 });
    const metrics = await broker.request("GET", "/metrics", { token: null });
    expect(metrics.text).toMatch(/broker_leases_revoke_failed [1-9]/);

    broker.clock.advance(delay);
    expect(await retryUpstreamRevocations(broker.deps)).toEqual({ revoked: 0, failed: 1, pending: 0 });
    expect((await readLease(broker, credential.lease_id)).upstream_revoke.attempts).toBe(2);

    upstream.failRevoke = undefined;
    broker.clock.advance(60 * 60 * 1000);
    const summary = await retryUpstreamRevocations(broker.deps);
    expect(summary.revoked).toBeGreaterThanOrEqual(1);
    const done = await readLease(broker, credential.lease_id);
    expect(done.status).toBe("revoked");
    expect(done.upstream_revoke).toMatchObject({ state: "done", attempts: 3, last_error: null });
  });

  it("backoff doubles from 10 s to one hour with jitter", () => {
    const middle = () => 0.5;
    expect([1, 2, 3, 4].map((attempt) => upstreamRevokeDelayMs(attempt, middle))).toEqual([10_000, 20_000, 40_000, 80_000]);
    expect(upstreamRevokeDelayMs(30, middle)).toBe(3_600_000);
    expect(upstreamRevokeDelayMs(1, () => 0)).toBe(5_000);
    expect(upstreamRevokeDelayMs(1, () => 0.999_999)).toBeLessThanOrEqual(15_000);
  });

  it("expired lease is revoked upstream by the sweep", async () => {
    const { accessToken, secret } = await dynamicSetup();
    const credential = await obtainCredential(broker, accessToken, { secret: secret.name, ttl: 60 });
    const { upstream_lease_id: upstreamLeaseId } = await readLease(broker, credential.lease_id);

    broker.clock.advance(61_000);
    await sweepExpiredLeases(broker.deps);
    await retryUpstreamRevocations(broker.deps);

    expect(upstream.live.has(upstreamLeaseId)).toBe(false);
    expect((await readLease(broker, credential.lease_id))).toMatchObject({ status: "expired", upstream_revoke: { state: "done" } });
  });
});
