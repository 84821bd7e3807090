import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRotationTick } from "../../broker/rotation/rotation-scheduler.js";
import { createSecret } from "../credentials/credential-fixtures.js";
import { seedSecret, standinAdapter, standinSettings, startAwsStandin } from "../support/aws-standin/aws-fixture.js";
import type { AwsStandin } from "../support/aws-standin/standin-server.js";
import { auditEvents, expectProblem, invalidParamNames, registerSnapshot, uniqueName } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

const LAMBDA = "arn:aws:lambda:eu-west-1:123456789012:function:rotate-orders-db";
const ADAPTER = "aws-secrets-manager";

/** AWS rotation schedules beside the broker's policy, and secrets rotated by an AWS Lambda that the broker leaves alone. */
describe("AWS rotation schedules and Lambda rotation", () => {
  let standin: AwsStandin;
  let broker: TestBroker;

  beforeAll(async () => {
    standin = await startAwsStandin();
    broker = await startTestBroker({ adapters: [standinAdapter(standin)] });
  });

  afterAll(async () => {
    await broker?.close();
    await standin?.close();
  });

  function lambdaRotated(awsName: string) {
    return seedSecret(standin, awsName, { password: "pw-lambda" }, {
      rotationEnabled: true,
      rotationLambdaArn: LAMBDA,
      rotationRules: { ScheduleExpression: "rate(30 days)", Duration: "3h" },
      lastRotatedDate: new Date("2026-05-01T04:00:00Z"),
    });
  }

  it("Lambda-rotated secret marked at registration", async () => {
    const awsName = `prod/${uniqueName("lambda")}`;
    lambdaRotated(awsName);

    const secret = await createSecret(broker, { name: `aws/${uniqueName("lambda")}`, adapter: ADAPTER, generate: undefined, settings: standinSettings(standin, awsName) });

    expect(secret.external_rotation).toEqual({ rotator: LAMBDA, schedule: "rate(30 days)", window: "3h", checked_at: expect.any(String) });
    expect(secret.next_rotation_at).toBeNull();
    const read = await broker.request("GET", `/v1/secrets/${secret.id}`, { token: broker.tokens.auditor });
    expect(read.json.external_rotation.rotator).toBe(LAMBDA);
  });

  it("schedules shown side by side", async () => {
    const awsName = `prod/${uniqueName("lambda")}`;
    lambdaRotated(awsName);
    const secret = await createSecret(broker, { name: `aws/${uniqueName("lambda")}`, adapter: ADAPTER, generate: undefined, settings: standinSettings(standin, awsName) });

    const response = await broker.request("GET", `/v1/secrets/${secret.id}/rotation-schedule`, { token: broker.tokens.auditor });

    expect(response.status, response.text).toBe(200);
    expect(response.json.broker).toEqual({ rotation: null, next_rotation_at: null, last_rotated_at: null });
    expect(response.json.upstream).toEqual({
      enabled: true,
      rotator: LAMBDA,
      schedule: "rate(30 days)",
      window: "3h",
      last_rotated_at: "2026-05-01T04:00:00.000Z",
      next_rotation_at: null,
    });
  });

  it("days-only AWS rule shown as rate()", async () => {
    const awsName = `prod/${uniqueName("days")}`;
    seedSecret(standin, awsName, { password: "pw" }, { rotationRules: { AutomaticallyAfterDays: 7 } });
    const secret = await createSecret(broker, {
      name: `aws/${uniqueName("days")}`,
      adapter: ADAPTER,
      generate: undefined,
      rotation: { schedule: "0 3 * * 1" },
      settings: standinSettings(standin, awsName),
    });

    const response = await broker.request("GET", `/v1/secrets/${secret.id}/rotation-schedule`, { token: broker.tokens.auditor });

    expect(response.json.broker.rotation).toMatchObject({ schedule: "0 3 * * 1" });
    expect(response.json.broker.next_rotation_at).not.toBeNull();
    expect(response.json.upstream).toMatchObject({ enabled: false, rotator: null, schedule: "rate(7 days)" });
    expect(secret.external_rotation).toBeNull();
  });

  it("broker policy on Lambda-rotated secret rejected", async () => {
    const awsName = `prod/${uniqueName("lambda")}`;
    lambdaRotated(awsName);
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name: `aws/${uniqueName("twice")}`, adapter: ADAPTER, owner: "team", rotation: { max_age: 86_400 }, settings: standinSettings(standin, awsName) },
    });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual(["rotation"]);
    expect(response.json.detail).toContain(LAMBDA);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("manual rotation and policy change rejected", async () => {
    const awsName = `prod/${uniqueName("lambda")}`;
    lambdaRotated(awsName);
    const secret = await createSecret(broker, { name: `aws/${uniqueName("lambda")}`, adapter: ADAPTER, generate: undefined, settings: standinSettings(standin, awsName) });

    const rotate = await broker.request("POST", `/v1/secrets/${secret.id}/rotate`, { token: broker.tokens.operator });
    const patch = await broker.request("PATCH", `/v1/secrets/${secret.id}`, { token: broker.tokens.operator, body: { rotation: { max_age: 86_400 } } });

    expectProblem(rotate, 409, "invalid_state");
    expect(rotate.json.detail).toContain(LAMBDA);
    expectProblem(patch, 400, "validation_failed");
    expect(invalidParamNames(patch)).toEqual(["rotation"]);
  });

  it("Lambda turned on later stops the schedule", async () => {
    const awsName = `prod/${uniqueName("later")}`;
    const stored = seedSecret(standin, awsName, { password: "pw-later" });
    const secret = await createSecret(broker, {
      name: `aws/${uniqueName("later")}`,
      adapter: ADAPTER,
      generate: undefined,
      rotation: { max_age: 3600 },
      settings: standinSettings(standin, awsName),
    });
    stored.rotationEnabled = true;
    stored.rotationLambdaArn = LAMBDA;
    const puts = standin.callsOf("PutSecretValue").length;

    broker.clock.advance(2 * 3600 * 1000);
    const first = await runRotationTick(broker.deps, "test");
    broker.clock.advance(2 * 3600 * 1000);
    const second = await runRotationTick(broker.deps, "test");

    expect(first.outcomes).toEqual(["rolled_back"]);
    expect(second.started).toBe(0);
    expect(standin.callsOf("PutSecretValue").length).toBe(puts);
    const read = (await broker.request("GET", `/v1/secrets/${secret.id}`, { token: broker.tokens.auditor })).json;
    expect(read.external_rotation).toMatchObject({ rotator: LAMBDA });
    expect(read.next_rotation_at).toBeNull();
    expect(stored.versions.size).toBe(1);
  });

  it("refresh clears the mark once the Lambda is off", async () => {
    const awsName = `prod/${uniqueName("off")}`;
    const stored = lambdaRotated(awsName);
    const secret = await createSecret(broker, { name: `aws/${uniqueName("off")}`, adapter: ADAPTER, generate: undefined, settings: standinSettings(standin, awsName) });
    stored.rotationEnabled = false;

    const refreshed = await broker.request("POST", `/v1/secrets/${secret.id}/external-rotation/refresh`, { token: broker.tokens.operator });

    expect(refreshed.status, refreshed.text).toBe(200);
    expect(refreshed.json.external_rotation).toBeNull();
    const patch = await broker.request("PATCH", `/v1/secrets/${secret.id}`, { token: broker.tokens.operator, body: { rotation: { max_age: 86_400 } } });
    expect(patch.status, patch.text).toBe(200);
    expect(patch.json.next_rotation_at).not.toBeNull();
    const [event] = await auditEvents(broker, `action=secret.external_rotation_refresh&target=${secret.id}`);
    expect(event).toMatchObject({ actor: expect.any(String), details: { name: secret.name, rotator_before: LAMBDA, rotator_after: null } });
  });

  it("refresh marks a secret AWS now rotates and stops its schedule", async () => {
    const awsName = `prod/${uniqueName("on")}`;
    const stored = seedSecret(standin, awsName, { password: "pw-on" });
    const secret = await createSecret(broker, { name: `aws/${uniqueName("on")}`, adapter: ADAPTER, generate: undefined, rotation: { max_age: 3600 }, settings: standinSettings(standin, awsName) });
    expect(secret.next_rotation_at).not.toBeNull();
    stored.rotationEnabled = true;
    stored.rotationLambdaArn = LAMBDA;

    const refreshed = await broker.request("POST", `/v1/secrets/${secret.id}/external-rotation/refresh`, { token: broker.tokens.operator });

    expect(refreshed.status, refreshed.text).toBe(200);
    expect(refreshed.json).toMatchObject({ external_rotation: { rotator: LAMBDA }, next_rotation_at: null });
    const rotate = await broker.request("POST", `/v1/secrets/${secret.id}/rotate`, { token: broker.tokens.operator });
    expectProblem(rotate, 409, "invalid_state");
    expect(rotate.json.detail).toContain("external-rotation/refresh");
  });

  it("refresh refused for auditors and unknown ids", async () => {
    const awsName = `prod/${uniqueName("roles")}`;
    seedSecret(standin, awsName, { password: "pw-roles" });
    const secret = await createSecret(broker, { name: `aws/${uniqueName("roles")}`, adapter: ADAPTER, generate: undefined, settings: standinSettings(standin, awsName) });
    const before = await registerSnapshot(broker);

    const asAuditor = await broker.request("POST", `/v1/secrets/${secret.id}/external-rotation/refresh`, { token: broker.tokens.auditor });
    const unknown = await broker.request("POST", "/v1/secrets/sec_000000000000000000000000/external-rotation/refresh", { token: broker.tokens.operator });
    const malformed = await broker.request("POST", "/v1/secrets/sec_1/external-rotation/refresh", { token: broker.tokens.operator });

    expectProblem(asAuditor, 403, "forbidden");
    expectProblem(unknown, 404, "not_found");
    expectProblem(malformed, 400, "validation_failed");
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("refresh leaves a local secret unmarked and its schedule alone", async () => {
    const local = await createSecret(broker, { name: `local/${uniqueName("refresh")}`, rotation: { max_age: 86_400 } });
    // A retry time after a rollback differs from what the policy alone gives.
    const retryAt = "2030-01-02T03:04:05.000Z";
    await broker.query(`update secrets set next_rotation_at = '${retryAt}' where id = '${local.id}'`);

    const refreshed = await broker.request("POST", `/v1/secrets/${local.id}/external-rotation/refresh`, { token: broker.tokens.operator });

    expect(refreshed.status, refreshed.text).toBe(200);
    expect(refreshed.json.external_rotation).toBeNull();
    expect(refreshed.json.next_rotation_at).toBe(retryAt);
  });
});
