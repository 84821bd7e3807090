import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { UpstreamRejected, UpstreamUnavailable } from "../../adapters/errors.js";
import { ROTATION_RETRY_DELAY_MS, runRotation } from "../../broker/rotation/rotation-runner.js";
import { runRotationTick } from "../../broker/rotation/rotation-scheduler.js";
import { auditEvents, expectProblem } from "../support/register-fixtures.js";
import { type RecordedStep, RecordingStaticAdapter } from "../support/recording-adapter.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { createGrant, createSecret, obtainCredential, readLease, workloadWithToken } from "../credentials/credential-fixtures.js";

const DAY_MS = 24 * 60 * 60 * 1000;
const OWNER = "test-process";

let broker: TestBroker;
const upstream = new RecordingStaticAdapter();

beforeAll(async () => {
  broker = await startTestBroker({ adapters: [upstream] });
});

afterAll(async () => {
  await broker?.close();
});

beforeEach(() => {
  for (const step of Object.keys(upstream.fail) as RecordedStep[]) {
    delete upstream.fail[step];
  }
  upstream.onStep = undefined;
});

function tick() {
  return runRotationTick(broker.deps, OWNER);
}

async function rotateNow(secretId: string, body: Record<string, unknown> = { reason: "test" }) {
  const response = await broker.request("POST", `/v1/secrets/${secretId}/rotate`, { token: broker.tokens.operator, body });
  expect(response.status, response.text).toBe(202);
  return response.json;
}

async function rotation(id: string) {
  return (await broker.request("GET", `/v1/rotations/${id}`, { token: broker.tokens.auditor })).json;
}

async function versions(secretId: string): Promise<Record<string, string>> {
  const response = await broker.request("GET", `/v1/secrets/${secretId}/versions`, { token: broker.tokens.auditor });
  return Object.fromEntries(response.json.items.map((item: { version: string; stage: string }) => [item.version, item.stage]));
}

function staticSecret(fields: Record<string, unknown> = {}) {
  return createSecret(broker, { adapter: "recording-static", generate: undefined, value: "initial-value", ...fields });
}

describe("scheduled rotation", () => {
  it("is due at max_age and walks the four steps", async () => {
    const secret = await createSecret(broker, { rotation: { max_age: 86_400 } });
    expect(secret.next_rotation_at).toBe(new Date(broker.clock.now().getTime() + DAY_MS).toISOString());
    const due = await broker.request("GET", `/v1/secrets?rotation_due_before=${new Date(broker.clock.now().getTime() + 2 * DAY_MS).toISOString()}`, { token: broker.tokens.auditor });
    expect(due.json.items.map((item: { id: string }) => item.id)).toContain(secret.id);

    expect((await tick()).started).toBe(0);
    broker.clock.advance(DAY_MS);
    const result = await tick();

    expect(result.started).toBeGreaterThanOrEqual(1);
    expect(result.outcomes).toContain("completed");
    expect(await versions(secret.id)).toEqual({ "1": "previous", "2": "current" });
    const [record] = (await broker.request("GET", `/v1/secrets/${secret.id}/rotations`, { token: broker.tokens.auditor })).json.items;
    expect(record).toMatchObject({ trigger: "schedule", status: "completed", from_version: "1", to_version: "2", last_step: "finish" });
    expect(record.steps.map((step: { step: string; outcome: string }) => `${step.step}:${step.outcome}`)).toEqual(["create:success", "set:success", "test:success", "finish:success"]);
    const refreshed = (await broker.request("GET", `/v1/secrets/${secret.id}`, { token: broker.tokens.auditor })).json;
    expect(refreshed).toMatchObject({ current_version: "2", last_rotated_at: broker.clock.now().toISOString() });
    expect(refreshed.next_rotation_at).toBe(new Date(broker.clock.now().getTime() + DAY_MS).toISOString());
  });

  it("follows a cron schedule in its time zone, offset within the window", async () => {
    const secret = await createSecret(broker, { rotation: { schedule: "0 3 * * *", time_zone: "Europe/Paris", window: 3600 } });
    const next = Date.parse(secret.next_rotation_at);
    // 03:00 in Paris is 01:00 UTC in June (CEST), when the test clock runs.
    const occurrence = new Date(broker.clock.now());
    occurrence.setUTCHours(1, 0, 0, 0);
    if (occurrence <= broker.clock.now()) occurrence.setUTCDate(occurrence.getUTCDate() + 1);
    expect(next).toBeGreaterThanOrEqual(occurrence.getTime());
    expect(next).toBeLessThan(occurrence.getTime() + 3_600_000);
  });

  it("hands out the new value and reports it on the next renewal", async () => {
    const { workload, accessToken } = await workloadWithToken(broker);
    const secret = await createSecret(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });
    const before = await obtainCredential(broker, accessToken, { secret: secret.name, ttl: 600 });

    await rotateNow(secret.id);
    await tick();

    const after = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(after.version).toBe("2");
    expect(after.data.value).not.toBe(before.data.value);
    const renewed = await broker.request("POST", `/v1/leases/${before.lease_id}/renew`, { token: accessToken });
    expect(renewed.json).toMatchObject({ version: "1", current_version: "2" });
  });
});

describe("manual rotation", () => {
  it("answers 202, and 409 with the id while one is in progress", async () => {
    const secret = await staticSecret();
    const started = await rotateNow(secret.id);
    expect(started).toMatchObject({ status: "in_progress", trigger: "manual", reason: "test", from_version: "1" });

    const again = await broker.request("POST", `/v1/secrets/${secret.id}/rotate`, { token: broker.tokens.operator });
    expectProblem(again, 409, "conflict");
    expect(again.json.rotation_id).toBe(started.id);

    await tick();
    expect((await rotation(started.id)).status).toBe("completed");
    expect(upstream.upstream.get(secret.id)).not.toBe("initial-value");
  });

  it("refuses dynamic and deleted secrets, bad bodies and auditors", async () => {
    const admin = await createSecret(broker, { generate: undefined, value: { password: "admin-password-0001" } });
    const dynamic = await createSecret(broker, { adapter: "postgres", kind: "dynamic", generate: undefined, settings: { connection: { host: "127.0.0.1", port: 5432, database: "d", username: "u", password_secret: admin.name }, role: { member_of: [] } } });
    expectProblem(await broker.request("POST", `/v1/secrets/${dynamic.id}/rotate`, { token: broker.tokens.operator }), 409, "invalid_state");
    const deleted = await staticSecret();
    await broker.request("DELETE", `/v1/secrets/${deleted.id}`, { token: broker.tokens.operator });
    expectProblem(await broker.request("POST", `/v1/secrets/${deleted.id}/rotate`, { token: broker.tokens.operator }), 404, "not_found");
    const handSet = await createSecret(broker, { generate: undefined, value: { api_key: "set-by-hand-0001" } });
    const noPolicy = await broker.request("POST", `/v1/secrets/${handSet.id}/rotate`, { token: broker.tokens.operator });
    expectProblem(noPolicy, 409, "invalid_state");
    expect(noPolicy.json.detail).toContain("no generate policy");
    const secret = await staticSecret();
    expectProblem(await broker.request("POST", `/v1/secrets/${secret.id}/rotate`, { token: broker.tokens.operator, body: { mode: "panic" } }), 400, "validation_failed");
    expectProblem(await broker.request("POST", `/v1/secrets/${secret.id}/rotate`, { token: broker.tokens.operator, body: { reason: "" } }), 400, "validation_failed");
    expectProblem(await broker.request("POST", `/v1/secrets/${secret.id}/rotate`, { token: broker.tokens.auditor }), 403, "forbidden");
    expectProblem(await broker.request("POST", "/v1/secrets/sec_0123456789abcdef01234567/rotate", { token: broker.tokens.operator }), 404, "not_found");
    expectProblem(await broker.request("GET", "/v1/rotations/rot_x", { token: broker.tokens.auditor }), 400, "validation_failed");
    expectProblem(await broker.request("GET", "/v1/rotations?status=stuck", { token: broker.tokens.auditor }), 400, "validation_failed");
  });
});

describe("failures", () => {
  const steps: [RecordedStep, string][] = [
    ["createPending", "create"],
    ["setPending", "set"],
    ["testPending", "test"],
    ["finishPending", "finish"],
  ];

  it.each(steps)("a rejected %s rolls back and keeps the current version", async (adapterStep, step) => {
    const secret = await staticSecret();
    upstream.fail[adapterStep] = new UpstreamRejected(`${adapterStep} refused`);
    const started = await rotateNow(secret.id);

    await tick();

    const record = await rotation(started.id);
    expect(record).toMatchObject({ status: "rolled_back", failed_step: step, error: `${adapterStep} refused` });
    expect(await versions(secret.id)).toEqual({ "1": "current" });
    expect(upstream.upstream.get(secret.id)).toBe("initial-value");
    const discarded = upstream.calls.some((call) => call.step === "discardPending" && call.version === "2");
    expect(discarded).toBe(step !== "create");
    const [rollback] = (await auditEvents(broker, "action=rotation.rollback")).filter((event) => event.target === started.id);
    expect(rollback!.details).toMatchObject({ failed_step: step, current_version: "1" });
  });

  it("a retryable failure waits and then resumes", async () => {
    const secret = await staticSecret();
    upstream.fail.testPending = new UpstreamUnavailable("upstream is down");
    const started = await rotateNow(secret.id);

    expect((await tick()).outcomes).toEqual(["retry_later"]);
    expect(await rotation(started.id)).toMatchObject({ status: "in_progress", last_step: "set", attempts: 1 });
    delete upstream.fail.testPending;
    expect((await tick()).outcomes).toEqual([]);

    broker.clock.advance(ROTATION_RETRY_DELAY_MS);
    expect((await tick()).outcomes).toEqual(["completed"]);
    expect(await versions(secret.id)).toEqual({ "1": "previous", "2": "current" });
  });

  it("a new rotation after a rollback generates a fresh value", async () => {
    const secret = await staticSecret();
    upstream.fail.testPending = new UpstreamRejected("weak password");
    await rotateNow(secret.id);
    await tick();
    const firstTry = upstream.calls.filter((call) => call.step === "createPending").length;
    delete upstream.fail.testPending;

    const retry = await rotateNow(secret.id);
    await tick();

    expect((await rotation(retry.id)).status).toBe("completed");
    expect(upstream.calls.filter((call) => call.step === "createPending").length).toBe(firstTry + 1);
  });
});

describe("crash recovery", () => {
  it("a rotation left claimed by a dead process resumes after its claim lapses", async () => {
    const secret = await staticSecret();
    const started = await rotateNow(secret.id);
    const stop = new AbortController();
    upstream.onStep = (step) => {
      if (step === "setPending") stop.abort();
    };
    await broker.query(`update rotations set claimed_by = 'dead-process', claim_expires_at = now() where id = '${started.id}'`);
    expect(await runRotation(broker.deps, started.id, "dead-process", 60_000, stop.signal)).toBe("released");
    upstream.onStep = undefined;
    // Simulate the kill: the claim stays held as if the process died after the set step.
    const claimUntil = new Date(broker.clock.now().getTime() + 60_000).toISOString();
    await broker.query(`update rotations set claimed_by = 'dead-process', claim_expires_at = '${claimUntil}' where id = '${started.id}'`);
    expect((await rotation(started.id)).last_step).toBe("set");

    expect((await tick()).outcomes).toEqual([]);
    broker.clock.advance(60_001);
    expect((await tick()).outcomes).toEqual(["completed"]);

    expect(await versions(secret.id)).toEqual({ "1": "previous", "2": "current" });
    expect(upstream.calls.filter((call) => call.step === "createPending" && call.version === null).length).toBeGreaterThan(0);
    const verify = await broker.request("GET", "/v1/audit/verify", { token: broker.tokens.auditor });
    expect(verify.json.valid).toBe(true);
  });
});

describe("rotation metrics", () => {
  it("exports version ages, overdue secrets and outcomes", async () => {
    const secret = await createSecret(broker, { rotation: { max_age: 3600 } });
    broker.clock.advance(2 * 3_600_000);

    const metrics = (await broker.request("GET", "/metrics", { token: null })).text;

    expect(metrics).toContain(`broker_secret_current_version_age_seconds{secret="${secret.name}"} 7200`);
    expect(metrics).toMatch(/broker_rotations_overdue [1-9]/);
    expect(metrics).toMatch(/broker_rotations_total\{trigger="schedule",outcome="completed"\} [1-9]/);
    await tick();
  });
});

describe("lease policies at finish", () => {
  it("compromise revokes every lease of the old versions", async () => {
    const { workload, accessToken } = await workloadWithToken(broker);
    const secret = await createSecret(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });
    const old = await obtainCredential(broker, accessToken, { secret: secret.name });

    const started = await rotateNow(secret.id, { reason: "leaked in a log", mode: "compromise" });
    expect(started.trigger).toBe("compromise");
    await tick();

    expect((await readLease(broker, old.lease_id)).status).toBe("revoked");
    const fresh = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect((await readLease(broker, fresh.lease_id)).status).toBe("active");
  });

  it("grace keeps old leases; revoke ends them", async () => {
    const { workload, accessToken } = await workloadWithToken(broker);
    const grace = await createSecret(broker, { rotation: { max_age: 86_400 } });
    const strict = await createSecret(broker, { rotation: { max_age: 86_400, old_leases: "revoke" } });
    await createGrant(broker, { service_account_id: workload.accountId, secret: grace.name });
    await createGrant(broker, { service_account_id: workload.accountId, secret: strict.name });
    const graceLease = await obtainCredential(broker, accessToken, { secret: grace.name });
    const strictLease = await obtainCredential(broker, accessToken, { secret: strict.name });

    await rotateNow(grace.id);
    await rotateNow(strict.id);
    await tick();

    expect((await readLease(broker, graceLease.lease_id)).status).toBe("active");
    expect((await readLease(broker, strictLease.lease_id)).status).toBe("revoked");
  });
});
