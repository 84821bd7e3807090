import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../broker/audit/audit-verify.js";
import { openDatabase } from "../../broker/db/database.js";
import { type BrokerProcess, runCli, startBrokerProcess } from "../support/broker-process.js";

const ESTATE = path.resolve("examples/estate.yaml");

describe("secrets-broker CLI against a running broker", () => {
  let broker: BrokerProcess;
  let adminToken: string;
  let asAdmin: NodeJS.ProcessEnv;

  beforeAll(async () => {
    broker = await startBrokerProcess();
    adminToken = (await readFile(path.join(broker.dataDir, "admin-token"), "utf8")).trim();
    asAdmin = { BROKER_TOKEN: adminToken };
  });

  afterAll(async () => {
    await broker.cleanup();
  });

  it("first start writes the admin token file with mode 0600", async () => {
    const info = await stat(path.join(broker.dataDir, "admin-token"));
    expect(info.mode & 0o777).toBe(0o600);
    expect(adminToken).toMatch(/^sbo_tok_[0-9a-f]{24}\./);
    expect(broker.output()).not.toContain(adminToken);
    expect(broker.output()).toContain("admin-token");
  });

  it("init refuses an initialized database with exit 1", async () => {
    const result = await broker.cli(["init", "--json"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("already initialized");
  });

  it("usage errors exit 2", async () => {
    expect((await broker.cli(["sa", "create"], asAdmin)).code).toBe(2);
    expect((await broker.cli(["no-such-command"], asAdmin)).code).toBe(2);
    const badTime = await broker.cli(["sa", "list", "--expiring-before", "next tuesday"], asAdmin);
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain("--expiring-before");
  });

  it("missing token exits 1 with advice", async () => {
    const result = await broker.cli(["app", "list"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("BROKER_TOKEN");
  });

  it("unreachable broker exits 1", async () => {
    const result = await broker.cli(["app", "list"], { ...asAdmin, BROKER_ADDR: "http://127.0.0.1:9" });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("cannot reach the broker");
  });

  it("manages applications and service accounts", async () => {
    const app = await broker.cli(["app", "create", "--name", "cli-app", "--technical-owner", "ops@example.com", "--json"], asAdmin);
    expect(app.code, app.stderr).toBe(0);
    expect(JSON.parse(app.stdout).name).toBe("cli-app");

    const created = await broker.cli(
      ["sa", "create", "--name", "cli-sa", "--application", "cli-app", "--technical-owner", "dev@example.com",
        "--expires-at", "30d", "--scope", "a.read", "--scope", "a.write", "--json"],
      asAdmin,
    );
    expect(created.code, created.stderr).toBe(0);
    const account = JSON.parse(created.stdout);
    expect(account.allowed_scopes).toEqual(["a.read", "a.write"]);

    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwkFile = path.join(broker.dataDir, "key.json");
    await writeFile(jwkFile, JSON.stringify(publicKey.export({ format: "jwk" })));
    const key = await broker.cli(["sa", "key", "add", account.id, "--jwk-file", jwkFile, "--json"], asAdmin);
    expect(key.code, key.stderr).toBe(0);
    expect(JSON.parse(key.stdout).alg).toBe("ES256");

    const shown = JSON.parse((await broker.cli(["sa", "show", account.id, "--json"], asAdmin)).stdout);
    expect(shown.keys).toHaveLength(1);

    const suspended = await broker.cli(["sa", "suspend", account.id, "--reason", "incident 42", "--json"], asAdmin);
    expect(JSON.parse(suspended.stdout).status).toBe("suspended");
    const listed = JSON.parse((await broker.cli(["sa", "list", "--status", "suspended", "--json"], asAdmin)).stdout);
    expect(listed.map((item: { id: string }) => item.id)).toContain(account.id);

    const decommissioned = await broker.cli(["sa", "decommission", account.id, "--json"], asAdmin);
    expect(JSON.parse(decommissioned.stdout).status).toBe("decommissioned");
    const again = await broker.cli(["sa", "suspend", account.id], asAdmin);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("decommissioned");
  });

  it("imports the example estate and lists what is expiring or overdue", async () => {
    const dryRun = await broker.cli(["import", ESTATE, "--dry-run", "--json"], asAdmin);
    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(JSON.parse(dryRun.stdout).dry_run).toBe(true);

    const imported = await broker.cli(["import", ESTATE, "--json"], asAdmin);
    expect(imported.code, imported.stderr).toBe(0);
    const result = JSON.parse(imported.stdout);
    expect(result.applications).toHaveLength(3);
    expect(result.service_accounts.length).toBeGreaterThanOrEqual(12);

    const expiring = JSON.parse((await broker.cli(["sa", "list", "--expiring-before", "30d", "--json"], asAdmin)).stdout);
    expect(expiring.map((item: { name: string }) => item.name)).toContain("reporting-dashboard");
    const overdue = JSON.parse((await broker.cli(["sa", "list", "--review-overdue", "--json"], asAdmin)).stdout);
    expect(overdue.map((item: { name: string }) => item.name)).toContain("backup-automation");
  });

  it("rejects an invalid estate file with line and field, importing nothing", async () => {
    const text = [
      "applications:",
      "  - name: late-failure",
      "    technical_owner: ops@example.com",
      "service_accounts:",
      "  - name: late-failure-ok",
      "    application: late-failure",
      "    technical_owner: ops@example.com",
      "    expires_at: +30d",
      "  - name: late-failure-expired",
      "    application: late-failure",
      "    technical_owner: ops@example.com",
      "    expires_at: -1d",
      "",
    ].join("\n");
    const file = path.join(broker.dataDir, "bad-estate.yaml");
    await writeFile(file, text);

    const result = await broker.cli(["import", file], asAdmin);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("bad-estate.yaml:12:");
    expect(result.stderr).toContain("service_accounts[1].expires_at: must be in the future");
    const applications = JSON.parse((await broker.cli(["app", "list", "--json"], asAdmin)).stdout);
    expect(applications.map((item: { name: string }) => item.name)).not.toContain("late-failure");
  });

  it("reports a schema error in the file before contacting the broker", async () => {
    const file = path.join(broker.dataDir, "typo.yaml");
    await writeFile(file, "applications:\n  - name: typo\n    technical_ownr: x\n");
    const result = await broker.cli(["import", file], asAdmin);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("typo.yaml:3:");
    expect(result.stderr).toContain("applications[0].technical_ownr: unknown field");
  });

  it("creates, uses and revokes operator tokens", async () => {
    const created = await broker.cli(["token", "create", "--role", "auditor", "--name", "auditor-cli", "--json"], asAdmin);
    expect(created.code, created.stderr).toBe(0);
    const { id, token } = JSON.parse(created.stdout);

    const asAuditor = { BROKER_TOKEN: token };
    expect((await broker.cli(["sa", "list", "--json"], asAuditor)).code).toBe(0);
    const refused = await broker.cli(["app", "create", "--name", "nope", "--technical-owner", "x"], asAuditor);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("403");

    expect((await broker.cli(["token", "revoke", id], asAdmin)).code).toBe(0);
    const afterRevoke = await broker.cli(["sa", "list"], asAuditor);
    expect(afterRevoke.code).toBe(1);
    expect(afterRevoke.stderr).toContain("401");
    expect(broker.output()).not.toContain(token);
  });

  it("verifies and exports the audit log", async () => {
    const verified = await broker.cli(["audit", "verify", "--json"], asAdmin);
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout).valid).toBe(true);

    const out = path.join(broker.dataDir, "audit.ndjson");
    const exported = await broker.cli(["audit", "export", "--action", "estate.import", "--out", out], asAdmin);
    expect(exported.code, exported.stderr).toBe(0);
    const lines = (await readFile(out, "utf8")).trim().split("\n").map((line) => JSON.parse(line));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.every((event) => event.action === "estate.import")).toBe(true);
    expect(await readFile(out, "utf8")).not.toContain(adminToken);
  });

  it("stops cleanly on SIGTERM", async () => {
    const code = await broker.stop("SIGTERM");
    expect(code).toBe(0);
    expect(broker.output()).toContain("broker stopped");
  });
});

describe("secrets-broker serve", () => {
  it("second SIGINT keeps the clean shutdown", async () => {
    const broker = await startBrokerProcess();
    try {
      // What Ctrl-C under `npm start` does: the terminal and npm each send SIGINT. The second
      // goes once the first is being handled, because the system merges a pending repeat.
      broker.signal("SIGINT");
      await expect.poll(() => broker.output(), { timeout: 5000, interval: 5 }).toContain("shutting down");
      const code = await broker.stop("SIGINT");

      expect(code).toBe(0);
      expect(broker.output()).toContain("broker stopped");
    } finally {
      await broker.cleanup();
    }
  });
});

describe("secrets-broker init", () => {
  it("chains its audit events before it exits", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "sb-init-"));
    try {
      const result = await runCli(["init", "--json"], { PATH: process.env["PATH"], HOME: process.env["HOME"], BROKER_DATA_DIR: dataDir, LOG_LEVEL: "warn" });
      expect(result.code, result.stderr).toBe(0);

      const database = await openDatabase({ dataDir });
      try {
        const verification = await verifyAuditChain(database.db);
        expect(verification).toMatchObject({ valid: true, pending: 0 });
        expect(verification.events).toBeGreaterThan(0);
      } finally {
        await database.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
