import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rotationToken } from "../../adapters/aws-secrets-manager/staged-rotation.js";
import { ROTATION_RETRY_DELAY_MS } from "../../broker/rotation/rotation-runner.js";
import { runRotationTick } from "../../broker/rotation/rotation-scheduler.js";
import { createGrant, createSecret, obtainCredential, workloadWithToken } from "../credentials/credential-fixtures.js";
import { labelsOf, seedSecret, standinAdapter, standinSettings, startAwsStandin } from "../support/aws-standin/aws-fixture.js";
import type { AwsStandin } from "../support/aws-standin/standin-server.js";
import { auditEvents, uniqueName } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

/** Rotations of AWS Secrets Manager secrets run by the broker's engine against the stand-in. */
describe("rotation of an AWS Secrets Manager secret", () => {
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

  async function registered(value: Record<string, unknown> = { username: "orders", password: "pw-before-rotation" }, fields: Record<string, unknown> = {}) {
    const awsName = `prod/${uniqueName("rotating")}`;
    const stored = seedSecret(standin, awsName, value);
    const secret = await createSecret(broker, { name: `aws/${uniqueName("rotating")}`, adapter: "aws-secrets-manager", generate: undefined, settings: standinSettings(standin, awsName), ...fields });
    return { awsName, stored, secret, firstVersion: [...stored.versions.keys()][0]! };
  }

  async function startRotation(secretId: string, body: Record<string, unknown> = {}): Promise<string> {
    const response = await broker.request("POST", `/v1/secrets/${secretId}/rotate`, { token: broker.tokens.operator, body });
    expect(response.status, response.text).toBe(202);
    return response.json.id;
  }

  async function rotationRecord(rotationId: string): Promise<any> {
    return (await broker.request("GET", `/v1/rotations/${rotationId}`, { token: broker.tokens.auditor })).json;
  }

  it("rotation moves AWSCURRENT and new reads get it", async () => {
    const { secret, stored, firstVersion } = await registered();
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });
    const before = await obtainCredential(broker, accessToken, { secret: secret.name });

    const rotationId = await startRotation(secret.id, { reason: "quarterly" });
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);

    const token = rotationToken(rotationId);
    expect(labelsOf(stored)).toEqual({ [firstVersion]: ["AWSPREVIOUS"], [token]: ["AWSCURRENT", "AWSPENDING"] });
    const after = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(after.version).toBe(token);
    expect(after.data.username).toBe("orders");
    expect(after.data.password).not.toBe(before.data.password);
    const versions = (await broker.request("GET", `/v1/secrets/${secret.id}/versions`, { token: broker.tokens.auditor })).json.items;
    const stages = Object.fromEntries(versions.map((version: any) => [version.version, version.stage]));
    expect(stages).toEqual({ [token]: "current", [firstVersion]: "previous" });
    expect(await rotationRecord(rotationId)).toMatchObject({ status: "completed", from_version: firstVersion, to_version: token });
  });

  it("rotation after a finished one ignores its AWSPENDING", async () => {
    const { secret, stored } = await registered();
    await startRotation(secret.id);
    await runRotationTick(broker.deps, "test");

    const second = await startRotation(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);

    expect(labelsOf(stored)[rotationToken(second)]).toEqual(["AWSCURRENT", "AWSPENDING"]);
  });

  it("own unfinished AWSPENDING resumed", async () => {
    const { secret, stored, firstVersion } = await registered();
    const rotationId = await startRotation(secret.id);
    // The create step stored this version, then its process died before the broker recorded it.
    standin.store.put(stored, { secretString: JSON.stringify({ username: "orders", password: "pw-from-crashed-step" }) }, rotationToken(rotationId), ["AWSPENDING"]);
    const puts = standin.callsOf("PutSecretValue").length;

    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);

    expect(standin.callsOf("PutSecretValue").length).toBe(puts);
    expect(labelsOf(stored)).toEqual({ [firstVersion]: ["AWSPREVIOUS"], [rotationToken(rotationId)]: ["AWSCURRENT", "AWSPENDING"] });
  });

  it("foreign AWSPENDING stops and reports", async () => {
    const { secret, stored, firstVersion } = await registered();
    const foreign = "console-edit-00000000000000000000000000";
    standin.store.put(stored, { secretString: "{}" }, foreign, ["AWSPENDING"]);

    const rotationId = await startRotation(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["rolled_back"]);

    const record = await rotationRecord(rotationId);
    expect(record).toMatchObject({ status: "rolled_back", failed_step: "create" });
    expect(record.error).toContain(foreign);
    expect(labelsOf(stored)).toEqual({ [firstVersion]: ["AWSCURRENT"], [foreign]: ["AWSPENDING"] });
    expect((await broker.request("GET", `/v1/secrets/${secret.id}`)).json.current_version).toBe(firstVersion);
  });

  it("failed test step rolls back the labels", async () => {
    const { secret, stored, firstVersion } = await registered();
    standin.failNext("GetSecretValue", { type: "AccessDeniedException", message: "not allowed to read AWSPENDING" }, 1, (input) => input["VersionStage"] === "AWSPENDING");

    const rotationId = await startRotation(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["rolled_back"]);

    expect(await rotationRecord(rotationId)).toMatchObject({ status: "rolled_back", failed_step: "test" });
    expect(labelsOf(stored)).toEqual({ [firstVersion]: ["AWSCURRENT"], [rotationToken(rotationId)]: [] });
    expect((await broker.request("GET", `/v1/secrets/${secret.id}`)).json.current_version).toBe(firstVersion);
  });

  it("throttled finish retried later and completed", async () => {
    const { secret, stored } = await registered();
    standin.failNext("UpdateSecretVersionStage", { type: "ThrottlingException", message: "Rate exceeded" }, 3);

    const rotationId = await startRotation(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["retry_later"]);
    broker.clock.advance(ROTATION_RETRY_DELAY_MS);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);

    expect(labelsOf(stored)[rotationToken(rotationId)]).toContain("AWSCURRENT");
    expect((await rotationRecord(rotationId)).attempts).toBe(1);
  });

  it("rotation audit and logs carry no value", async () => {
    const { secret } = await registered({ username: "orders", password: "pw-audit-check-1" });
    await startRotation(secret.id);
    await runRotationTick(broker.deps, "test");
    const rotated = [...standin.store.secrets.values()].flatMap((stored) => [...stored.versions.values()].map((version) => version.secretString ?? ""));

    const texts = [broker.logs.join("\n"), JSON.stringify(await auditEvents(broker))];
    for (const text of texts) {
      for (const value of rotated.filter((entry) => entry.length > 2)) {
        expect(text).not.toContain(value);
        expect(text).not.toContain(JSON.parse(value).password ?? "no-password-field");
      }
    }
  });
});
