import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrokerProcess, startBrokerProcess } from "../support/broker-process.js";

describe("secrets-broker rotate and rotations commands", () => {
  let broker: BrokerProcess;
  let asAdmin: NodeJS.ProcessEnv;
  const secretName = "cli/rotate/api-key";
  let secretId: string;

  beforeAll(async () => {
    broker = await startBrokerProcess();
    asAdmin = { BROKER_TOKEN: (await readFile(path.join(broker.dataDir, "admin-token"), "utf8")).trim() };
    const created = await broker.cli(["secret", "create", "--name", secretName, "--owner", "team", "--json"], asAdmin);
    expect(created.code, created.stderr).toBe(0);
    secretId = JSON.parse(created.stdout).id;
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  it("rotate --wait by name completes the rotation", async () => {
    const result = await broker.cli(["rotate", secretName, "--reason", "cli test", "--wait", "--json"], asAdmin);

    expect(result.code, result.stderr).toBe(0);
    const rotation = JSON.parse(result.stdout);
    expect(rotation).toMatchObject({ secret_id: secretId, trigger: "manual", status: "completed", from_version: "1", to_version: "2" });
  });

  it("rotate --compromise records the trigger", async () => {
    const result = await broker.cli(["rotate", secretId, "--compromise", "--wait", "--json"], asAdmin);

    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ trigger: "compromise", status: "completed", to_version: "3" });
  });

  it("rotations list filters by secret and status", async () => {
    const result = await broker.cli(["rotations", "list", "--secret", secretName, "--status", "completed", "--json"], asAdmin);

    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).map((rotation: { to_version: string }) => rotation.to_version).sort()).toEqual(["2", "3"]);
    const table = await broker.cli(["rotations", "list"], asAdmin);
    expect(table.stdout).toMatch(/^ID\s+SECRET_ID\s+TRIGGER\s+STATUS/);
  });

  it("rejects unknown secrets, bad statuses and auditors", async () => {
    const unknown = await broker.cli(["rotate", "cli/no-such-secret"], asAdmin);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("no secret is named 'cli/no-such-secret'");

    const missing = await broker.cli(["rotate"], asAdmin);
    expect(missing.code).toBe(2);

    const badTimeout = await broker.cli(["rotate", secretName, "--wait", "--timeout", "soon"], asAdmin);
    expect(badTimeout.code).toBe(2);

    const timeoutWithoutWait = await broker.cli(["rotate", secretName, "--timeout", "5"], asAdmin);
    expect(timeoutWithoutWait.code).toBe(2);
    expect(timeoutWithoutWait.stderr).toContain("--timeout applies to --wait only");

    const zeroTimeout = await broker.cli(["rotate", secretName, "--wait", "--timeout", "0"], asAdmin);
    expect(zeroTimeout.code).toBe(2);
    expect(zeroTimeout.stderr).toContain("at least 1 second");

    const badStatus = await broker.cli(["rotations", "list", "--status", "stuck"], asAdmin);
    expect(badStatus.code).toBe(1);
    expect(badStatus.stderr).toContain("status");

    const token = await broker.cli(["token", "create", "--role", "auditor", "--name", "cli-rotation-auditor", "--json"], asAdmin);
    const asAuditor = { BROKER_TOKEN: JSON.parse(token.stdout).token };
    const refused = await broker.cli(["rotate", secretName], asAuditor);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("403");
  });
});
