import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { seedSecret, standinAdapter, standinSettings, startAwsStandin } from "../support/aws-standin/aws-fixture.js";
import type { AwsStandin } from "../support/aws-standin/standin-server.js";
import { auditEvents, expectProblem, invalidParamNames, registerSnapshot, rowCount, uniqueName } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { createGrant, createSecret, obtainCredential, readLease, requestCredential, workloadWithToken } from "./credential-fixtures.js";

const ADAPTER = "aws-secrets-manager";

/**
 * Leased reads of AWS Secrets Manager secrets end to end: POST /v1/secrets and
 * POST /v1/credentials on the broker, the real AWS SDK client, and the stand-in over HTTP.
 */
describe("AWS Secrets Manager credentials", () => {
  let standin: AwsStandin;
  let broker: TestBroker;
  const values: string[] = [];

  beforeAll(async () => {
    standin = await startAwsStandin();
    broker = await startTestBroker({ adapters: [standinAdapter(standin)] });
  });

  afterEach(() => standin.clearFailures());

  afterAll(async () => {
    await broker?.close();
    await standin?.close();
  });

  /** Seeds an AWS secret, registers it in the broker and grants it to a new workload. */
  async function grantedSecret(value: Record<string, unknown> | string, settings: Record<string, unknown> = {}) {
    const awsName = `prod/${uniqueName("orders")}`;
    const stored = seedSecret(standin, awsName, value);
    values.push(typeof value === "string" ? value : String(value["password"]));
    const secret = await createSecret(broker, { name: `aws/${uniqueName("orders")}`, adapter: ADAPTER, generate: undefined, settings: standinSettings(standin, awsName, settings) });
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });
    return { secret, stored, accessToken, versionId: [...stored.versions.keys()][0]! };
  }

  it("registration records the AWSCURRENT VersionId", async () => {
    const { secret, versionId } = await grantedSecret({ password: "pw-registration-1" });

    expect(secret.current_version).toBe(versionId);
    const versions = await broker.request("GET", `/v1/secrets/${secret.id}/versions`, { token: broker.tokens.auditor });
    expect(versions.json.items).toEqual([expect.objectContaining({ version: versionId, stage: "current", fingerprint: expect.stringMatching(/^hmac-sha256:/) })]);
  });

  it("credential carries fields and the VersionId", async () => {
    const { secret, accessToken, versionId } = await grantedSecret({ username: "orders_app", password: "pw-credential-2" });

    const credential = await obtainCredential(broker, accessToken, { secret: secret.name, ttl: 300 });

    expect(credential.data).toEqual({ username: "orders_app", password: "pw-credential-2" });
    expect(credential.version).toBe(versionId);
    expect(credential.renewable).toBe(true);
    expect((await readLease(broker, credential.lease_id)).secret_version).toBe(versionId);
  });

  it("pinned stage read and recorded", async () => {
    const { secret, stored, accessToken, versionId } = await grantedSecret({ password: "pw-previous-3" }, { version_stage: "AWSPREVIOUS" });
    standin.store.put(stored, { secretString: JSON.stringify({ password: "pw-current-3" }) }, "v2-token-0000000000000000000000000003", ["AWSCURRENT"]);
    values.push("pw-current-3");

    const credential = await obtainCredential(broker, accessToken, { secret: secret.name });

    expect(credential.data).toEqual({ password: "pw-previous-3" });
    expect(credential.version).toBe(versionId);
  });

  it("pinned version_id read and recorded", async () => {
    const awsName = `prod/${uniqueName("pinned")}`;
    const stored = seedSecret(standin, awsName, { password: "pw-pinned-4" });
    const pinned = [...stored.versions.keys()][0]!;
    standin.store.put(stored, { secretString: JSON.stringify({ password: "pw-newer-4" }) }, "v2-token-0000000000000000000000000004", ["AWSCURRENT"]);
    values.push("pw-pinned-4", "pw-newer-4");

    const secret = await createSecret(broker, { name: `aws/${uniqueName("pinned")}`, adapter: ADAPTER, generate: undefined, settings: standinSettings(standin, awsName, { version_id: pinned }) });
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });
    const credential = await obtainCredential(broker, accessToken, { secret: secret.name });

    expect(secret.settings).not.toHaveProperty("version_stage");
    expect(credential.data).toEqual({ password: "pw-pinned-4" });
    expect(credential.version).toBe(pinned);
  });

  it("second registration of one AWS secret refused", async () => {
    const { secret } = await grantedSecret({ password: "pw-twice-5" });
    const settings = secret.settings;

    const again = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name: `aws/${uniqueName("again")}`, adapter: ADAPTER, kind: "static", owner: "team-orders", settings },
    });

    expectProblem(again, 409, "conflict");
    expect(again.json.detail).toContain(`secret '${secret.name}' (${secret.id}) already refers to`);
  });

  it("registration by name stores the ARN", async () => {
    const { secret, stored } = await grantedSecret({ password: "pw-arn-stored" });

    expect(secret.settings["secret_id"]).toBe(stored.arn);
    expect(secret.settings["region"]).toBe("eu-west-1");
  });

  it.each([
    ["name, then ARN", (stored: { name: string; arn: string }) => [stored.name, stored.arn]],
    ["ARN, then name", (stored: { name: string; arn: string }) => [stored.arn, stored.name]],
  ])("one AWS secret by %s refused", async (_case, order) => {
    const stored = seedSecret(standin, `prod/${uniqueName("named")}`, { password: "pw-by-name-and-arn" });
    const [firstId, secondId] = order(stored);
    const first = await createSecret(broker, { name: `aws/${uniqueName("first")}`, adapter: ADAPTER, generate: undefined, settings: standinSettings(standin, firstId!) });
    const before = await registerSnapshot(broker);

    const again = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name: `aws/${uniqueName("second")}`, adapter: ADAPTER, kind: "static", owner: "team-orders", settings: standinSettings(standin, secondId!) },
    });

    expectProblem(again, 409, "conflict");
    expect(again.json.detail).toContain(`secret '${first.name}' (${first.id}) already refers to`);
    expect(again.json.detail).toContain(stored.arn);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("settings change to another AWS secret refused", async () => {
    const { secret } = await grantedSecret({ password: "pw-patch-1" });
    const other = seedSecret(standin, `prod/${uniqueName("other")}`, { password: "pw-patch-other" });
    const before = await registerSnapshot(broker);

    const moved = await broker.request("PATCH", `/v1/secrets/${secret.id}`, { token: broker.tokens.operator, body: { settings: { ...secret.settings, secret_id: other.arn } } });

    expectProblem(moved, 400, "validation_failed");
    expect(invalidParamNames(moved)).toEqual(["settings"]);
    expect(moved.json.detail).toContain(`records the versions of`);
    expect(await registerSnapshot(broker)).toEqual(before);
    const retuned = await broker.request("PATCH", `/v1/secrets/${secret.id}`, { token: broker.tokens.operator, body: { settings: { ...secret.settings, timeouts: { connect_ms: 1000, request_ms: 2000 } } } });
    expect(retuned.status, retuned.text).toBe(200);
    expect(retuned.json.settings.timeouts).toEqual({ connect_ms: 1000, request_ms: 2000 });
  });

  it("throttled read retried and issued", async () => {
    const { secret, accessToken } = await grantedSecret("plain-throttled-4");
    standin.failNext("GetSecretValue", { type: "ThrottlingException", message: "Rate exceeded" }, 1);

    const credential = await obtainCredential(broker, accessToken, { secret: secret.name });

    expect(credential.data).toEqual({ value: "plain-throttled-4" });
  });

  it("access denied reported, not retried, no lease", async () => {
    const { secret, accessToken } = await grantedSecret({ password: "pw-denied-5" });
    standin.failNext("GetSecretValue", { type: "AccessDeniedException", message: "User is not authorized to perform secretsmanager:GetSecretValue" }, 3);
    const before = standin.callsOf("GetSecretValue").length;
    const leasesBefore = await rowCount(broker, "leases");

    const response = await requestCredential(broker, accessToken, { secret: secret.name });

    expectProblem(response, 502, "upstream_rejected");
    expect(response.json.detail).toContain("AccessDeniedException");
    expect(standin.callsOf("GetSecretValue").length - before).toBe(1);
    expect(await rowCount(broker, "leases")).toBe(leasesBefore);
  });

  it("unavailable upstream is 503 with Retry-After", async () => {
    const { secret, accessToken } = await grantedSecret({ password: "pw-down-6" });
    standin.dropNext("GetSecretValue", 5);

    const response = await requestCredential(broker, accessToken, { secret: secret.name });

    expectProblem(response, 503, "upstream_unavailable");
    expect(response.headers.get("retry-after")).not.toBeNull();
  });

  it("decryption failure reported as rejected", async () => {
    const { secret, accessToken } = await grantedSecret({ password: "pw-kms-7" });
    standin.failNext("GetSecretValue", { type: "DecryptionFailure", message: "Secrets Manager can't decrypt the protected secret text using the provided KMS key." }, 1);

    const response = await requestCredential(broker, accessToken, { secret: secret.name });

    expectProblem(response, 502, "upstream_rejected");
    expect(response.json.detail).toContain("kms:Decrypt");
  });

  it("bad settings rejected with nothing written", async () => {
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name: "aws/bad", adapter: ADAPTER, owner: "team", settings: { secret_id: "bad id", region: "Europe", retry: { mode: "legacy" } } },
    });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual(["settings.secret_id", "settings.region", "settings.retry.mode"]);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("value at registration rejected", async () => {
    seedSecret(standin, "prod/value-given", "x");

    const response = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name: "aws/value-given", adapter: ADAPTER, owner: "team", value: { password: "pw-not-stored" }, settings: standinSettings(standin, "prod/value-given") },
    });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual(["value"]);
  });

  it("missing AWS secret rejected at registration", async () => {
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name: "aws/missing", adapter: ADAPTER, owner: "team", settings: standinSettings(standin, "prod/does-not-exist") },
    });

    expectProblem(response, 502, "upstream_not_found");
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("wrong region at registration names settings.region", async () => {
    seedSecret(standin, "prod/wrong-region", { password: "pw-wrong-region" });
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name: "aws/wrong-region", adapter: ADAPTER, owner: "team", settings: standinSettings(standin, "prod/wrong-region", { region: "us-east-2" }) },
    });

    expectProblem(response, 502, "upstream_rejected");
    expect(response.json.detail).toContain("settings.region us-east-2 must be the region of settings.endpoint");
    expect(response.json.detail).toContain("InvalidSignatureException: Credential should be scoped to a valid region, not 'us-east-2'.");
    expect(response.json.detail).not.toContain(standin.credentials.accessKeyId);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("values and credentials stay out of logs and audit", async () => {
    const texts = [broker.logs.join("\n"), JSON.stringify(await auditEvents(broker)), (await broker.request("GET", "/v1/secrets?limit=1000")).text];
    for (const text of texts) {
      for (const value of values) {
        expect(text).not.toContain(value);
      }
      expect(text).not.toContain(standin.credentials.secretAccessKey);
    }
  });
});
