import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrokerProcess, startBrokerProcess } from "../support/broker-process.js";

describe("secrets-broker keys", () => {
  let broker: BrokerProcess;
  let asAdmin: NodeJS.ProcessEnv;

  beforeAll(async () => {
    broker = await startBrokerProcess();
    asAdmin = { BROKER_TOKEN: (await readFile(path.join(broker.dataDir, "admin-token"), "utf8")).trim() };
  });

  afterAll(async () => {
    await broker.cleanup();
  });

  async function listKeys(): Promise<{ kid: string; state: string; activates_at: string }[]> {
    const result = await broker.cli(["keys", "list", "--json"], asAdmin);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout);
  }

  it("lists the first key as active", async () => {
    const keys = await listKeys();

    expect(keys).toHaveLength(1);
    expect(keys[0]!.state).toBe("active");
  });

  it("rotates with a publish delay", async () => {
    const before = Date.now();

    const result = await broker.cli(["keys", "rotate", "--publish-delay", "60", "--json"], asAdmin);

    expect(result.code, result.stderr).toBe(0);
    const key = JSON.parse(result.stdout);
    expect(key.state).toBe("pending");
    expect(Date.parse(key.activates_at) - before).toBeGreaterThanOrEqual(59_000);
    expect((await listKeys()).map((listed) => listed.kid)).toContain(key.kid);
    const jwks = (await (await fetch(`${broker.address}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((published) => published.kid)).toContain(key.kid);
  });

  it("rotates with the default delay", async () => {
    const before = Date.now();

    const result = await broker.cli(["keys", "rotate", "--json"], asAdmin);

    expect(result.code, result.stderr).toBe(0);
    expect(Date.parse(JSON.parse(result.stdout).activates_at) - before).toBeGreaterThanOrEqual(599_000);
  });

  it("prints a table without --json", async () => {
    const result = await broker.cli(["keys", "list"], asAdmin);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^KID\s+ALG\s+STATE\s+CREATED_AT\s+ACTIVATES_AT\s+PUBLISHED_UNTIL/);
    expect(result.stdout).toContain("pending");
  });

  it.each([
    { case: "non-numeric delay", args: ["--publish-delay", "soon"] },
    { case: "negative delay", args: ["--publish-delay", "-5"] },
    { case: "delay over one day", args: ["--publish-delay", "86401"] },
    { case: "unknown option", args: ["--delay", "60"] },
  ])("rotate with $case exits 2", async ({ args }) => {
    const result = await broker.cli(["keys", "rotate", ...args], asAdmin);

    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
  });

  it("rotate as auditor exits 1", async () => {
    const created = await broker.cli(["token", "create", "--role", "auditor", "--name", "keys-auditor", "--json"], asAdmin);
    const auditor = { BROKER_TOKEN: JSON.parse(created.stdout).token };

    const rotated = await broker.cli(["keys", "rotate"], auditor);
    const listed = await broker.cli(["keys", "list", "--json"], auditor);

    expect(rotated.code).toBe(1);
    expect(rotated.stderr).toContain("admin role");
    expect(listed.code, listed.stderr).toBe(0);
  });

  it("serve stops the expiry sweep on SIGTERM", async () => {
    expect(broker.output()).toContain("lease expiry sweep scheduled");

    const code = await broker.stop("SIGTERM");

    expect(code).toBe(0);
    expect(broker.output()).toContain("lease expiry sweep stopped");
    expect(broker.output()).toContain("broker stopped");
  });
});
