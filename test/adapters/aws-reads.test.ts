import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AwsSecretsManagerAdapter } from "../../adapters/aws-secrets-manager/aws-adapter.js";
import { toAwsAdapterError } from "../../adapters/aws-secrets-manager/aws-errors.js";
import { AdapterError } from "../../adapters/errors.js";
import { awsCall, seedSecret, standinAdapter, standinSettings, startAwsStandin } from "../support/aws-standin/aws-fixture.js";
import type { AwsStandin } from "../support/aws-standin/standin-server.js";

const ISSUE = { leaseId: "lease_test", expiresAt: new Date(Date.now() + 60_000), current: null };

/** Leased reads through the real AWS SDK client against the stand-in, with error mapping. */
describe("aws-secrets-manager adapter reads", () => {
  let standin: AwsStandin;
  let adapter: AwsSecretsManagerAdapter;

  beforeAll(async () => {
    standin = await startAwsStandin();
    adapter = standinAdapter(standin);
  });

  afterEach(() => standin.clearFailures());

  afterAll(async () => {
    await adapter?.close();
    await standin?.close();
  });

  async function issueError(settings: Record<string, unknown>): Promise<AdapterError> {
    const error = await adapter.issue(awsCall(settings), ISSUE).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AdapterError);
    return error as AdapterError;
  }

  it("JSON value returned as fields with its VersionId", async () => {
    const secret = seedSecret(standin, "reads/json", { username: "orders", password: "pw-json-1", port: 5432 });
    const current = [...secret.versions.keys()][0];

    const issued = await adapter.issue(awsCall(standinSettings(standin, "reads/json")), ISSUE);

    expect(issued).toEqual({ data: { username: "orders", password: "pw-json-1", port: "5432" }, version: current, upstreamLeaseId: null });
  });

  it("plain string returned as value", async () => {
    seedSecret(standin, "reads/plain", "plain-text-token");

    const issued = await adapter.issue(awsCall(standinSettings(standin, "reads/plain")), ISSUE);

    expect(issued.data).toEqual({ value: "plain-text-token" });
  });

  it("binary returned as base64", async () => {
    standin.store.create("reads/binary", { secretBinary: Buffer.from([0, 1, 2, 250]).toString("base64") }, undefined);

    const issued = await adapter.issue(awsCall(standinSettings(standin, "reads/binary")), ISSUE);

    expect(issued.data).toEqual({ value_base64: "AAEC+g==" });
  });

  it("read by ARN, stage and version id", async () => {
    const secret = seedSecret(standin, "reads/versions", { password: "first-value" });
    const first = [...secret.versions.keys()][0]!;
    const second = standin.store.put(secret, { secretString: JSON.stringify({ password: "second-value" }) }, "v2-token-0000000000000000000000000000", ["AWSCURRENT"]);

    const byArn = await adapter.issue(awsCall(standinSettings(standin, secret.arn)), ISSUE);
    const byStage = await adapter.issue(awsCall(standinSettings(standin, "reads/versions", { version_stage: "AWSPREVIOUS" })), ISSUE);
    const byVersion = await adapter.issue(awsCall(standinSettings(standin, "reads/versions", { version_id: first })), ISSUE);

    expect(byArn).toMatchObject({ version: second.versionId, data: { password: "second-value" } });
    expect(byStage).toMatchObject({ version: first, data: { password: "first-value" } });
    expect(byVersion).toMatchObject({ version: first, data: { password: "first-value" } });
  });

  it("requests are SigV4-signed for secretsmanager", async () => {
    seedSecret(standin, "reads/signed", "signed");

    await adapter.issue(awsCall(standinSettings(standin, "reads/signed")), ISSUE);

    const [call] = standin.callsOf("GetSecretValue").filter((entry) => entry.input["SecretId"] === "reads/signed");
    expect(call!.accessKeyId).toBe(standin.credentials.accessKeyId);
    expect(call!.input).toEqual({ SecretId: "reads/signed", VersionStage: "AWSCURRENT" });
  });

  it("missing secret is upstream_not_found", async () => {
    const error = await issueError(standinSettings(standin, "reads/missing"));

    expect(error.code).toBe("upstream_not_found");
    expect(error.retryable).toBe(false);
    expect(error.message).toContain("reads/missing");
  });

  it("missing stage is upstream_not_found", async () => {
    seedSecret(standin, "reads/no-stage", "x");

    const error = await issueError(standinSettings(standin, "reads/no-stage", { version_stage: "AWSPENDING" }));

    expect(error.code).toBe("upstream_not_found");
  });

  it.each([
    ["AccessDeniedException", "upstream_rejected", /denied/],
    ["DecryptionFailure", "upstream_rejected", /kms:Decrypt/],
    ["InvalidRequestException", "upstream_rejected", /InvalidRequestException/],
  ])("%s is %s and not retried", async (type, code, message) => {
    seedSecret(standin, `reads/${type}`, "value");
    standin.failNext("GetSecretValue", { type }, 5);
    const before = standin.callsOf("GetSecretValue").length;

    const error = await issueError(standinSettings(standin, `reads/${type}`));

    expect(error.code).toBe(code);
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(message);
    expect(standin.callsOf("GetSecretValue").length - before).toBe(1);
  });

  it("secret marked for deletion is rejected", async () => {
    seedSecret(standin, "reads/deleted", "value", { deletedDate: new Date() });

    const error = await issueError(standinSettings(standin, "reads/deleted"));

    expect(error.code).toBe("upstream_rejected");
    expect(error.message).toContain("marked for deletion");
  });

  it("throttling retried until it succeeds", async () => {
    seedSecret(standin, "reads/throttled", "after-throttling");
    standin.failNext("GetSecretValue", { type: "ThrottlingException", message: "Rate exceeded" }, 2);

    const issued = await adapter.issue(awsCall(standinSettings(standin, "reads/throttled")), ISSUE);

    expect(issued.data).toEqual({ value: "after-throttling" });
    const outcomes = standin.callsOf("GetSecretValue").slice(-3).map((call) => call.outcome);
    expect(outcomes).toEqual([400, 400, 200]);
  });

  it("throttling past max attempts is retryable unavailable", async () => {
    seedSecret(standin, "reads/always-throttled", "never");
    standin.failNext("GetSecretValue", { type: "ThrottlingException", message: "Rate exceeded" }, 10);

    const error = await issueError(standinSettings(standin, "reads/always-throttled", { retry: { max_attempts: 2 } }));

    expect(error.code).toBe("upstream_unavailable");
    expect(error.retryable).toBe(true);
  });

  it("dropped connection retried", async () => {
    seedSecret(standin, "reads/dropped", "after-drop");
    standin.dropNext("GetSecretValue", 1);

    const issued = await adapter.issue(awsCall(standinSettings(standin, "reads/dropped")), ISSUE);

    expect(issued.data).toEqual({ value: "after-drop" });
    expect(standin.callsOf("GetSecretValue").slice(-2).map((call) => call.outcome)).toEqual(["dropped", 200]);
  });

  it("dropped connections past max attempts are unavailable", async () => {
    seedSecret(standin, "reads/always-dropped", "never");
    standin.dropNext("GetSecretValue", 10);

    const error = await issueError(standinSettings(standin, "reads/always-dropped", { retry: { max_attempts: 2 } }));

    expect(error.code).toBe("upstream_unavailable");
    expect(error.retryable).toBe(true);
  });

  it("refused connection is unavailable", async () => {
    const error = await issueError({ ...standinSettings(standin, "reads/json"), endpoint: "http://127.0.0.1:9", retry: { max_attempts: 1 } });

    expect(error.code).toBe("upstream_unavailable");
    expect(error.message).toContain("ECONNREFUSED");
  });

  it("aborted call is upstream_timeout", async () => {
    seedSecret(standin, "reads/slow", "slow");
    standin.latencyMs = 2_000;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);

    try {
      const error = await adapter.issue(awsCall(standinSettings(standin, "reads/slow"), { signal: controller.signal }), ISSUE).catch((caught: unknown) => caught);
      expect((error as AdapterError).code).toBe("upstream_timeout");
    } finally {
      standin.latencyMs = 0;
    }
  });

  it("unknown access key is rejected", async () => {
    const stranger = new (adapter.constructor as typeof AwsSecretsManagerAdapter)({ credentials: { accessKeyId: "AKIDUNKNOWN", secretAccessKey: "x" } });
    try {
      const error = await stranger.issue(awsCall(standinSettings(standin, "reads/json")), ISSUE).catch((caught: unknown) => caught);
      expect((error as AdapterError).code).toBe("upstream_rejected");
      expect((error as AdapterError).message).toContain("UnrecognizedClientException");
    } finally {
      await stranger.close();
    }
  });

  it("region other than the endpoint's names settings.region", async () => {
    const error = await issueError({ ...standinSettings(standin, "reads/json"), region: "eu-central-1" });

    expect(error.code).toBe("upstream_rejected");
    expect(error.retryable).toBe(false);
    expect(error.message).toContain("settings.region eu-central-1 must be the region of settings.endpoint");
    expect(error.message).toContain("InvalidSignatureException: Credential should be scoped to a valid region, not 'eu-central-1'.");
    expect(error.message).not.toContain("credentials were not accepted");
    expect(error.message).not.toContain(standin.credentials.accessKeyId);
  });

  it("region not enabled names settings.region and AWS's message", async () => {
    standin.failNext("GetSecretValue", { type: "UnrecognizedClientException", message: "The security token included in the request is invalid." });

    const error = await issueError(standinSettings(standin, "reads/json"));

    expect(error.code).toBe("upstream_rejected");
    expect(error.message).toContain("UnrecognizedClientException: The security token included in the request is invalid.");
    expect(error.message).toContain("check settings.region eu-west-1, which must be enabled for the AWS account");
  });

  it("missing region names settings.region", async () => {
    const { region: _region, ...withoutRegion } = standinSettings(standin, "reads/json");
    const requests = standin.calls.length;

    const error = await issueError(withoutRegion);

    expect(error.code).toBe("upstream_rejected");
    expect(error.message).toContain("no AWS region is set (Region is missing); set settings.region");
    expect(standin.calls).toHaveLength(requests);
  });

  it.each([
    ["regional host", undefined, "the regional endpoint of settings.region eu-west-9; check settings.region"],
    ["endpoint host", "https://vpce.example.test", "the host of settings.endpoint https://vpce.example.test; check settings.endpoint"],
  ])("unknown %s names the setting", (_case, endpoint, expected) => {
    const hostname = endpoint === undefined ? "secretsmanager.eu-west-9.amazonaws.com" : "vpce.example.test";
    // The error Node's HTTP client raises when getaddrinfo finds no such host.
    const dnsError = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND", syscall: "getaddrinfo", hostname });
    const context = { secretName: "aws/test", secretId: "prod/db", region: "eu-west-9", ...(endpoint === undefined ? {} : { endpoint }) };

    const error = toAwsAdapterError(dnsError, context, "GetSecretValue") as AdapterError;

    expect(error.code).toBe("upstream_unavailable");
    expect(error.message).toContain(`${hostname} does not resolve (ENOTFOUND)`);
    expect(error.message).toContain(expected);
  });
});
