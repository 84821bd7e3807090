import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedSecret, startAwsStandin, startStandinBroker } from "../support/aws-standin/aws-fixture.js";
import type { AwsStandin } from "../support/aws-standin/standin-server.js";
import type { BrokerProcess } from "../support/broker-process.js";

const LAMBDA = "arn:aws:lambda:eu-west-1:123456789012:function:rotate-billing";
/** The AWS SDK 3.1178.0 warns once per process on Node versions below this major. */
const SDK_WARNING_BELOW_NODE = 22;

/**
 * `secrets-broker secret rotation-schedule` against a broker process that reads the
 * stand-in through AWS_ENDPOINT_URL_SECRETS_MANAGER, as an operator runs it.
 */
describe("secrets-broker secret rotation-schedule", () => {
  let standin: AwsStandin;
  let broker: BrokerProcess;
  let asAdmin: NodeJS.ProcessEnv;

  beforeAll(async () => {
    standin = await startAwsStandin();
    ({ broker, asAdmin } = await startStandinBroker(standin));
  });

  afterAll(async () => {
    await broker?.cleanup();
    await standin?.close();
  });

  /** Seeds an AWS secret rotated by a Lambda and registers it under `name` with the CLI. */
  async function registerLambdaRotated(name: string) {
    const stored = seedSecret(standin, `prod/${name}`, { api_key: "key-billing" }, {
      rotationEnabled: true,
      rotationLambdaArn: LAMBDA,
      rotationRules: { ScheduleExpression: "cron(0 4 ? * SUN *)", Duration: "2h" },
    });
    const settingsFile = path.join(broker.dataDir, `${name}.json`);
    await writeFile(settingsFile, JSON.stringify({ secret_id: `prod/${name}` }));
    const created = await broker.cli(["secret", "create", "--name", `aws/${name}`, "--owner", "team-billing", "--adapter", "aws-secrets-manager", "--settings-file", settingsFile, "--json"], asAdmin);
    expect(created.code, created.stderr).toBe(0);
    return { stored, id: JSON.parse(created.stdout).id as string };
  }

  it("start prints no AWS SDK warning", () => {
    // The SDK warns on Node 20 when it builds its first client, which the broker does at its first AWS read.
    expect(broker.output()).not.toContain("NodeVersionSupportWarning");
  });

  it("schedule by name as JSON", async () => {
    const { id } = await registerLambdaRotated("billing-json");

    const byName = await broker.cli(["secret", "rotation-schedule", "aws/billing-json", "--json"], asAdmin);
    const byId = await broker.cli(["secret", "rotation-schedule", id, "--json"], asAdmin);

    expect(byName.code, byName.stderr).toBe(0);
    const schedule = JSON.parse(byName.stdout);
    expect(schedule).toMatchObject({
      broker: { rotation: null, next_rotation_at: null },
      upstream: { enabled: true, rotator: LAMBDA, schedule: "cron(0 4 ? * SUN *)", window: "2h" },
      external_rotation: { rotator: LAMBDA },
    });
    expect(JSON.parse(byId.stdout).upstream).toEqual(schedule.upstream);
  });

  it("table output names both schedules", async () => {
    await registerLambdaRotated("billing-table");

    const result = await broker.cli(["secret", "rotation-schedule", "aws/billing-table"], asAdmin);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^broker_rotation\s+-$/m);
    expect(result.stdout).toMatch(/^upstream_schedule\s+cron\(0 4 \? \* SUN \*\)$/m);
    expect(result.stdout).toMatch(/^external_rotation\s+\{.*"rotator":"arn:aws:lambda/m);
    expect(result.stdout).not.toContain("key-billing");
  });

  it("--refresh clears the mark after the Lambda is off", async () => {
    const { stored } = await registerLambdaRotated("billing-refresh");
    stored.rotationEnabled = false;

    const stale = await broker.cli(["secret", "rotation-schedule", "aws/billing-refresh", "--json"], asAdmin);
    const refreshed = await broker.cli(["secret", "rotation-schedule", "aws/billing-refresh", "--refresh", "--json"], asAdmin);

    expect(JSON.parse(stale.stdout)).toMatchObject({ upstream: { enabled: false }, external_rotation: { rotator: LAMBDA } });
    expect(refreshed.code, refreshed.stderr).toBe(0);
    expect(JSON.parse(refreshed.stdout)).toMatchObject({ upstream: { enabled: false }, external_rotation: null });
  });

  it("unknown secret name fails with exit 1", async () => {
    const result = await broker.cli(["secret", "rotation-schedule", "aws/no-such-secret"], asAdmin);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("no secret is named 'aws/no-such-secret'");
  });

  it("AWS SDK warning printed once, on Node before 22", () => {
    const expected = Number(process.versions.node.split(".")[0]) < SDK_WARNING_BELOW_NODE ? 1 : 0;

    expect(broker.output().split("NodeVersionSupportWarning").length - 1).toBe(expected);
  });
});
