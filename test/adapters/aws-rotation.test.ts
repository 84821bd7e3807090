import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AwsSecretsManagerAdapter } from "../../adapters/aws-secrets-manager/aws-adapter.js";
import { rotationToken } from "../../adapters/aws-secrets-manager/staged-rotation.js";
import type { AdapterCall } from "../../adapters/contract.js";
import { AdapterError } from "../../adapters/errors.js";
import { awsCall, labelsOf, seedSecret, standinAdapter, standinSettings, startAwsStandin } from "../support/aws-standin/aws-fixture.js";
import type { AwsStandin } from "../support/aws-standin/standin-server.js";
import type { StoredSecret } from "../support/aws-standin/standin-store.js";

/** The four rotation steps and rollback of the AWS adapter against the stand-in's staging labels. */
describe("aws-secrets-manager adapter rotation", () => {
  let standin: AwsStandin;
  let adapter: AwsSecretsManagerAdapter;
  let sequence = 0;

  beforeAll(async () => {
    standin = await startAwsStandin();
    adapter = standinAdapter(standin);
  });

  afterEach(() => standin.clearFailures());

  afterAll(async () => {
    await adapter?.close();
    await standin?.close();
  });

  /** Seeds a JSON secret and returns it with a call for it and a fresh rotation id. */
  function seeded(value: Record<string, unknown> = { username: "orders", password: "old-password" }) {
    sequence += 1;
    const name = `rotation/secret-${sequence}`;
    const secret = seedSecret(standin, name, value);
    const currentId = [...secret.versions.keys()][0]!;
    const rotationId = `rot_${sequence.toString(16).padStart(24, "0")}`;
    return { name, secret, currentId, rotationId, call: awsCall(standinSettings(standin, name)) };
  }

  async function errorOf(promise: Promise<unknown>): Promise<AdapterError> {
    const error = await promise.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AdapterError);
    return error as AdapterError;
  }

  async function rotate(call: AdapterCall, rotationId: string, currentId: string) {
    const current = { version: currentId, sealedValue: null };
    const pending = await adapter.createPending(call, { rotationId, current });
    await adapter.setPending(call, pending);
    await adapter.testPending(call, pending);
    await adapter.finishPending(call, pending, current);
    return pending;
  }

  it("first version adopts AWSCURRENT", async () => {
    const { call, currentId } = seeded();

    const first = await adapter.createPending(call, { rotationId: null, current: null });

    expect(first).toEqual({ version: currentId, sealedValue: null, data: { username: "orders", password: "old-password" } });
  });

  it("missing AWSPENDING generates and puts a version", async () => {
    const { call, secret, currentId, rotationId } = seeded();

    const pending = await adapter.createPending(call, { rotationId, current: { version: currentId, sealedValue: null } });

    expect(pending.version).toBe(rotationToken(rotationId));
    expect(pending.data["username"]).toBe("orders");
    expect(pending.data["password"]).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(labelsOf(secret)).toEqual({ [currentId]: ["AWSCURRENT"], [pending.version]: ["AWSPENDING"] });
    const [put] = standin.callsOf("PutSecretValue").slice(-1);
    expect(put!.input).toMatchObject({ ClientRequestToken: rotationToken(rotationId), VersionStages: ["AWSPENDING"] });
  });

  it("four steps move AWSCURRENT and AWSPREVIOUS", async () => {
    const { call, secret, currentId, rotationId } = seeded();

    const pending = await rotate(call, rotationId, currentId);

    expect(labelsOf(secret)).toEqual({ [currentId]: ["AWSPREVIOUS"], [pending.version]: ["AWSCURRENT", "AWSPENDING"] });
  });

  it("AWSPENDING on AWSCURRENT counts as finished", async () => {
    const { call, secret, currentId } = seeded();
    const first = await rotate(call, `rot_${"a".repeat(24)}`, currentId);

    const second = await rotate(call, `rot_${"b".repeat(24)}`, first.version);

    expect(labelsOf(secret)).toEqual({ [currentId]: [], [first.version]: ["AWSPREVIOUS"], [second.version]: ["AWSCURRENT", "AWSPENDING"] });
  });

  it("lost PutSecretValue response retried as a no-op", async () => {
    const { call, secret, currentId, rotationId } = seeded();
    standin.dropResponseNext("PutSecretValue", 1);

    const pending = await adapter.createPending(call, { rotationId, current: { version: currentId, sealedValue: null } });

    const puts = standin.callsOf("PutSecretValue").slice(-2);
    expect(puts.map((put) => put.outcome)).toEqual(["response-dropped", 200]);
    expect(puts[0]!.input["SecretString"]).toBe(puts[1]!.input["SecretString"]);
    expect(secret.versions.size).toBe(2);
    expect(pending.version).toBe(rotationToken(rotationId));
  });

  it("retried create resumes its own AWSPENDING", async () => {
    const { call, secret, currentId, rotationId } = seeded();
    const first = await adapter.createPending(call, { rotationId, current: { version: currentId, sealedValue: null } });
    const puts = standin.callsOf("PutSecretValue").length;

    const again = await adapter.createPending(call, { rotationId, current: { version: currentId, sealedValue: null } });

    expect(again).toEqual(first);
    expect(standin.callsOf("PutSecretValue").length).toBe(puts);
    expect(secret.versions.size).toBe(2);
  });

  it("another value under the same token conflicts", async () => {
    const { call, secret, currentId, rotationId } = seeded();
    // A version with this rotation's token but no label: the first create ran, then AWSPENDING was removed.
    standin.store.put(secret, { secretString: JSON.stringify({ password: "earlier-attempt" }) }, rotationToken(rotationId), []);

    const error = await errorOf(adapter.createPending(call, { rotationId, current: { version: currentId, sealedValue: null } }));

    expect(error.code).toBe("upstream_conflict");
    expect(error.message).toContain("ResourceExistsException");
    expect(labelsOf(secret)[currentId]).toEqual(["AWSCURRENT"]);
  });

  it("foreign AWSPENDING stops the rotation", async () => {
    const { call, secret, currentId, rotationId } = seeded();
    const foreign = "lambda-rotation-0000000000000000000000";
    standin.store.put(secret, { secretString: "{}" }, foreign, ["AWSPENDING"]);
    const puts = standin.callsOf("PutSecretValue").length;

    const error = await errorOf(adapter.createPending(call, { rotationId, current: { version: currentId, sealedValue: null } }));

    expect(error.code).toBe("upstream_conflict");
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(foreign);
    expect(error.message).toContain("update-secret-version-stage");
    expect(standin.callsOf("PutSecretValue").length).toBe(puts);
    expect(labelsOf(secret)).toEqual({ [currentId]: ["AWSCURRENT"], [foreign]: ["AWSPENDING"] });
  });

  it("test step fails when AWSPENDING moved", async () => {
    const { call, secret, currentId, rotationId } = seeded();
    const pending = await adapter.createPending(call, { rotationId, current: { version: currentId, sealedValue: null } });
    standin.store.put(secret, { secretString: "{}" }, "someone-else-000000000000000000000000", ["AWSPENDING"]);

    const error = await errorOf(adapter.testPending(call, pending));

    expect(error.code).toBe("upstream_conflict");
  });

  it("retried finish is a no-op", async () => {
    const { call, secret, currentId, rotationId } = seeded();
    const pending = await rotate(call, rotationId, currentId);
    const updates = standin.callsOf("UpdateSecretVersionStage").length;

    await adapter.finishPending(call, pending, { version: currentId, sealedValue: null });

    expect(standin.callsOf("UpdateSecretVersionStage").length).toBe(updates);
    expect(labelsOf(secret)[pending.version]).toContain("AWSCURRENT");
  });

  it("rollback after finish moves AWSCURRENT back", async () => {
    const { call, secret, currentId, rotationId } = seeded();
    const current = { version: currentId, sealedValue: null };
    const pending = await rotate(call, rotationId, currentId);

    await adapter.discardPending(call, pending, current);

    expect(labelsOf(secret)[currentId]).toEqual(["AWSCURRENT"]);
    expect(labelsOf(secret)[pending.version]).toEqual(["AWSPREVIOUS"]);
  });

  it("rollback before finish removes AWSPENDING", async () => {
    const { call, secret, currentId, rotationId } = seeded();
    const current = { version: currentId, sealedValue: null };
    const pending = await adapter.createPending(call, { rotationId, current });

    await adapter.discardPending(call, pending, current);

    expect(labelsOf(secret)).toEqual({ [currentId]: ["AWSCURRENT"], [pending.version]: [] });
  });

  it("given value stored as JSON or plain text", async () => {
    const json = seeded();
    const plain = seeded();

    const jsonPending = await adapter.createPending(json.call, { rotationId: json.rotationId, current: null, value: { username: "orders", password: "given-password" } });
    const plainPending = await adapter.createPending(plain.call, { rotationId: plain.rotationId, current: null, value: { value: "plain-given" } });

    expect(json.secret.versions.get(jsonPending.version)!.secretString).toBe('{"username":"orders","password":"given-password"}');
    expect(plain.secret.versions.get(plainPending.version)!.secretString).toBe("plain-given");
  });

  it("generate policy field replaced", async () => {
    const { name, secret, currentId, rotationId } = seeded({ api_key: "old-key", client: "orders" });
    const call = awsCall(standinSettings(standin, name), { secret: { generate: { length: 48, classes: ["lower", "digits"], field: "api_key" } } });

    const pending = await adapter.createPending(call, { rotationId, current: { version: currentId, sealedValue: null } });

    expect(pending.data["client"]).toBe("orders");
    expect(pending.data["api_key"]).toMatch(/^[a-z0-9]{48}$/);
    expect(secret.versions.size).toBe(2);
  });

  it("generate field missing from the JSON value refused", async () => {
    const { name, secret, currentId, rotationId } = seeded({ username: "orders_app", password: "old-password-000" });
    const call = awsCall(standinSettings(standin, name), { secret: { generate: { length: 24, classes: ["lower", "digits"], field: "value" } } });

    const error = await errorOf(adapter.createPending(call, { rotationId, current: { version: currentId, sealedValue: null } }));

    expect(error.code).toBe("upstream_rejected");
    expect(error.message).toContain("generate.field 'value'");
    expect(error.message).toContain("username, password");
    expect(error.message).not.toContain("old-password-000");
    expect(secret.versions.size).toBe(1);
  });

  it("binary secret not rotated without a value", async () => {
    sequence += 1;
    const binary: StoredSecret = standin.store.create(`rotation/binary-${sequence}`, { secretBinary: "AAEC" }, undefined);

    const error = await errorOf(adapter.createPending(awsCall(standinSettings(standin, binary.name)), { rotationId: `rot_${"c".repeat(24)}`, current: null }));

    expect(error.code).toBe("upstream_rejected");
    expect(error.message).toContain("binary");
  });

  it("Lambda-rotated secret not rotated", async () => {
    const { call, secret, currentId, rotationId } = seeded();
    secret.rotationEnabled = true;
    secret.rotationLambdaArn = "arn:aws:lambda:eu-west-1:123456789012:function:rotate-orders";

    const error = await errorOf(adapter.createPending(call, { rotationId, current: { version: currentId, sealedValue: null } }));

    expect(error.code).toBe("upstream_conflict");
    expect(error.message).toContain("rotate-orders");
    expect(secret.versions.size).toBe(1);
  });
});
