import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedSecret, startAwsStandin, startStandinBroker } from "../support/aws-standin/aws-fixture.js";
import type { AwsStandin } from "../support/aws-standin/standin-server.js";
import type { BrokerProcess, CliResult } from "../support/broker-process.js";

const LAMBDA = "arn:aws:lambda:eu-west-1:123456789012:function:rotate-payments";

/**
 * `secrets-broker discover aws` as a user runs it: the CLI lists the stand-in's secrets
 * with the real SDK and registers them through a broker process, which reads them from
 * the stand-in too. Both find it through AWS_ENDPOINT_URL_SECRETS_MANAGER and take
 * credentials from the environment, as the SDK's default chain does.
 */
describe("secrets-broker discover aws", () => {
  let standin: AwsStandin;
  let broker: BrokerProcess;
  let asAdmin: NodeJS.ProcessEnv;

  beforeAll(async () => {
    standin = await startAwsStandin();
    ({ broker, asAdmin } = await startStandinBroker(standin));
    // 105 secrets under prod/, so that listing takes two ListSecrets pages.
    for (let index = 0; index < 102; index += 1) {
      seedSecret(standin, `prod/bulk/item-${String(index).padStart(3, "0")}`, "bulk", { tags: [{ Key: "owner", Value: "team-bulk" }] });
    }
    seedSecret(standin, "prod/Orders/DB_Main", { password: "pw-orders" }, { tags: [{ Key: "owner", Value: "team-orders" }, { Key: "application", Value: "orders" }] });
    seedSecret(standin, "prod/payments/api", { api_key: "key-payments" }, { tags: [{ Key: "owner", Value: "team-payments" }], rotationEnabled: true, rotationLambdaArn: LAMBDA });
    seedSecret(standin, "prod/untagged", "no-owner");
    seedSecret(standin, "dev/orders", "not-under-prefix", { tags: [{ Key: "owner", Value: "team-orders" }] });
  });

  afterAll(async () => {
    await broker?.cleanup();
    await standin?.close();
  });

  async function discover(args: string[]): Promise<CliResult> {
    return broker.cli(["discover", "aws", "--prefix", "prod/", ...args], asAdmin);
  }

  function byName(result: CliResult): Map<string, any> {
    // NOTE: stderr may carry the AWS SDK's NodeVersionSupportWarning on Node 20, so only stdout is parsed.
    const output = JSON.parse(result.stdout) as { secrets: any[] };
    return new Map(output.secrets.map((secret) => [secret.aws_name, secret]));
  }

  async function brokerSecrets(): Promise<any[]> {
    const result = await broker.cli(["secret", "list", "--adapter", "aws-secrets-manager", "--json"], asAdmin);
    return JSON.parse(result.stdout);
  }

  it("dry run maps tags and writes nothing", async () => {
    const result = await discover(["--json"]);

    expect(result.code, result.stderr).toBe(0);
    const found = byName(result);
    expect(found.size).toBe(105);
    expect(found.has("dev/orders")).toBe(false);
    expect(found.get("prod/Orders/DB_Main")).toMatchObject({ name: "aws/prod/orders/db_main", owner: "team-orders", application: "orders", action: "register" });
    expect(found.get("prod/payments/api")).toMatchObject({ rotated_by: LAMBDA, action: "register" });
    expect(found.get("prod/untagged")).toMatchObject({ action: "skip", reason: expect.stringContaining("owner tag") });
    expect(await brokerSecrets()).toEqual([]);
    const pages = standin.callsOf("ListSecrets").slice(-2);
    expect(pages.map((call) => call.input["Filters"])).toEqual([[{ Key: "name", Values: ["prod/"] }], [{ Key: "name", Values: ["prod/"] }]]);
    expect(pages[1]!.input["NextToken"]).toBeDefined();
  });

  it("apply registers through the broker", async () => {
    const result = await discover(["--json", "--apply"]);

    expect(result.code, result.stderr).toBe(0);
    const found = byName(result);
    expect(found.get("prod/Orders/DB_Main")).toMatchObject({ action: "created", id: expect.stringMatching(/^sec_/) });
    const secrets = await brokerSecrets();
    expect(secrets).toHaveLength(104);
    const orders = secrets.find((secret) => secret.name === "aws/prod/orders/db_main");
    expect(orders).toMatchObject({ owner: "team-orders", description: "discovered in AWS Secrets Manager as prod/Orders/DB_Main; application orders" });
    expect(orders.settings.secret_id).toBe(standin.store.secrets.get("prod/Orders/DB_Main")!.arn);
    expect(orders.current_version).toBe([...standin.store.secrets.get("prod/Orders/DB_Main")!.versions.keys()][0]);
    const payments = secrets.find((secret) => secret.name === "aws/prod/payments/api");
    expect(payments.external_rotation).toMatchObject({ rotator: LAMBDA });
  });

  it("second apply finds them registered", async () => {
    const result = await discover(["--json", "--apply", "--default-owner", "team-platform"]);

    expect(result.code, result.stderr).toBe(0);
    const found = byName(result);
    expect(found.get("prod/Orders/DB_Main")).toMatchObject({ action: "registered" });
    expect(found.get("prod/untagged")).toMatchObject({ action: "created", owner: "team-platform" });
    expect(await brokerSecrets()).toHaveLength(105);
  });

  it("table output names the dry run", async () => {
    const result = await discover([]);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^dry run; run with --apply to register:\nAWS_NAME\s+NAME\s+OWNER/);
    expect(result.stdout).not.toContain("pw-orders");
  });

  it("denied listing is a clear error", async () => {
    standin.failNext("ListSecrets", { type: "AccessDeniedException", message: "not authorized to perform secretsmanager:ListSecrets" }, 1);

    const result = await discover([]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("AccessDeniedException");
    expect(result.stderr).toContain("check the AWS credentials");
  });

  it("invalid name prefix is a usage error", async () => {
    const listed = standin.callsOf("ListSecrets").length;

    for (const prefix of ["Bad Prefix/", "/aws/", "aws//"]) {
      const result = await discover(["--json", "--name-prefix", prefix]);

      expect(result.code, prefix).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toContain(`--name-prefix '${prefix}' is invalid`);
      expect(result.stderr).toContain("segments of lowercase letters, digits");
    }
    expect(standin.callsOf("ListSecrets")).toHaveLength(listed);
  });

  it("dry run skips names the broker would reject", async () => {
    const longName = `prod/long/${"n".repeat(260)}`;
    seedSecret(standin, longName, "long", { tags: [{ Key: "owner", Value: "team-long" }] });

    const dryRun = await discover(["--json"]);

    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(byName(dryRun).get(longName)).toMatchObject({ action: "skip", reason: expect.stringContaining("must be at most 256 characters") });
    const applied = await discover(["--json", "--apply"]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(byName(applied).get(longName)).toMatchObject({ action: "skip" });
    expect(await brokerSecrets()).toHaveLength(105);
  });

  it("values and keys stay out of broker output", () => {
    expect(broker.output()).not.toContain("pw-orders");
    expect(broker.output()).not.toContain("key-payments");
    expect(broker.output()).not.toContain(standin.credentials.secretAccessKey);
  });

  it("dry run skips broker names that are taken", async () => {
    seedSecret(standin, "prod/case/Token", "upper", { tags: [{ Key: "owner", Value: "team-case" }] });
    seedSecret(standin, "prod/case/token", "lower", { tags: [{ Key: "owner", Value: "team-case" }] });
    seedSecret(standin, "prod/legacy/key", "legacy", { tags: [{ Key: "owner", Value: "team-legacy" }] });
    const local = await broker.cli(["secret", "create", "--name", "aws/prod/legacy/key", "--owner", "team-legacy", "--json"], asAdmin);
    expect(local.code, local.stderr).toBe(0);

    const result = await discover(["--json"]);

    expect(result.code, result.stderr).toBe(0);
    const found = byName(result);
    const pair = [found.get("prod/case/Token"), found.get("prod/case/token")];
    expect(pair.map((entry) => entry.name)).toEqual(["aws/prod/case/token", "aws/prod/case/token"]);
    expect(pair.map((entry) => entry.action).sort()).toEqual(["register", "skip"]);
    expect(pair.find((entry) => entry.action === "skip").reason).toContain("aws/prod/case/token is taken");
    expect(found.get("prod/legacy/key")).toMatchObject({ action: "skip", reason: expect.stringContaining("aws/prod/legacy/key is taken") });
  });
});
