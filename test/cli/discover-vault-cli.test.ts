import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrokerProcess, type CliResult, startBrokerProcess } from "../support/broker-process.js";
import { SECRET_ID_SECRET } from "../support/vault-standin/vault-fixture.js";
import type { AppRole } from "../support/vault-standin/token-store.js";
import { VaultStandin } from "../support/vault-standin/vault-standin.js";

/**
 * `secrets-broker discover vault` as an operator runs it: the CLI lists the stand-in with
 * VAULT_TOKEN and registers secrets through a broker process, which then reads Vault with
 * its own AppRole login. The stand-in runs on the system clock, as the broker process does.
 */
describe("secrets-broker discover vault", () => {
  let broker: BrokerProcess;
  let standin: VaultStandin;
  let appRole: AppRole;
  let listToken: string;
  let environment: NodeJS.ProcessEnv;
  const transcript: string[] = [];

  beforeAll(async () => {
    standin = new VaultStandin();
    await standin.start();
    appRole = standin.tokens.addAppRole({});
    listToken = standin.tokens.addToken().id;
    standin.kv.put("prod/payments/api-key", { api_key: "kv-value-one" });
    standin.kv.put("prod/orders/db/admin", { password: "kv-value-two" });
    standin.kv.put("prod/Orders/API_Key", { value: "kv-value-three" });
    standin.kv.put("prod/with space", { value: "kv-value-five" });
    standin.kv.put("staging/ignored", { value: "kv-value-four" });
    standin.database.addRole("readonly", { defaultTtl: 3600, maxTtl: 7200 });
    standin.database.addStaticRole("orders-app", "orders_app");

    broker = await startBrokerProcess();
    environment = { BROKER_TOKEN: (await readFile(path.join(broker.dataDir, "admin-token"), "utf8")).trim(), VAULT_ADDR: standin.address, VAULT_TOKEN: listToken };
    const local = await cli(["secret", "create", "--name", SECRET_ID_SECRET, "--owner", "platform", "--value-file", await secretIdFile()]);
    expect(local.code, local.stderr).toBe(0);
  });

  afterAll(async () => {
    await broker?.stop();
    await broker?.cleanup();
    await standin?.stop();
  });

  async function secretIdFile(): Promise<string> {
    const file = path.join(broker.dataDir, "secret-id.json");
    await writeFile(file, JSON.stringify({ secret_id: appRole.secretId }));
    return file;
  }

  async function cli(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    const result = await broker.cli(args, { ...environment, ...extra });
    transcript.push(result.stdout, result.stderr);
    return result;
  }

  function discoverArgs(...extra: string[]): string[] {
    return ["discover", "vault", "--mount", "secret", "--prefix", "prod/", "--owner", "platform", "--auth", "approle", "--role-id", appRole.roleId, "--secret-id-secret", SECRET_ID_SECRET, ...extra];
  }

  it("dry run lists without registering", async () => {
    const result = await cli(discoverArgs("--json"));

    expect(result.code, result.stderr).toBe(0);
    const plan = JSON.parse(result.stdout);
    expect(plan.applied).toBe(false);
    expect(plan.secrets.map((secret: { name: string }) => secret.name)).toEqual([
      "vault/secret/prod/orders/api_key",
      "vault/secret/prod/orders/db/admin",
      "vault/secret/prod/payments/api-key",
      "vault/database/creds/readonly",
      "vault/database/static-creds/orders-app",
    ]);
    expect(plan.secrets.every((secret: { result: string }) => secret.result === "would create")).toBe(true);
    expect(plan.warnings).toEqual([expect.stringMatching(/^skipped secret\/data\/prod\/with space: the vault adapter does not accept it \(kv.path: /)]);
    const listed = await cli(["secret", "list", "--adapter", "vault", "--json"]);
    expect(JSON.parse(listed.stdout)).toEqual([]);
    expect(standin.callsTo("secret/metadata/prod/").every((call) => call.method === "LIST")).toBe(true);
  });

  it("apply registers, then reports existing", async () => {
    const applied = await cli(discoverArgs("--apply"));

    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/vault\/secret\/prod\/payments\/api-key\s+static\s+secret\/data\/prod\/payments\/api-key\s+-\s+created sec_/);
    expect(applied.stdout).toMatch(/vault\/database\/creds\/readonly\s+dynamic/);
    const listed = JSON.parse((await cli(["secret", "list", "--adapter", "vault", "--json"])).stdout) as { name: string; current_version: string | null }[];
    expect(listed).toHaveLength(5);
    expect(listed.find((secret) => secret.name === "vault/secret/prod/payments/api-key")!.current_version).toBe("1");

    const again = await cli(discoverArgs("--json"));
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).secrets.map((secret: { result: string }) => secret.result)).toEqual(Array(5).fill("exists"));
    const reapplied = await cli(discoverArgs("--apply", "--json"));
    expect(JSON.parse(reapplied.stdout).secrets.map((secret: { result: string }) => secret.result)).toEqual(Array(5).fill("exists"));
  });

  it("secret resync records a version written in Vault", async () => {
    standin.kv.put("prod/payments/api-key", { api_key: "kv-value-six" });

    const result = await cli(["secret", "resync", "vault/secret/prod/payments/api-key", "--reason", "rotated by hand", "--json"]);

    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ from_version: "1", to_version: "2", changed: true });
    const versions = JSON.parse((await cli(["secret", "versions", "vault/secret/prod/payments/api-key", "--json"])).stdout) as { version: string; stage: string }[];
    expect(versions.find((version) => version.version === "2")!.stage).toBe("current");
  });

  it("--generate-field sets the field rotations replace", async () => {
    standin.kv.put("ops/db/admin", { username: "ops_admin", password: "kv-value-seven" });

    const applied = await cli(discoverArgs("--apply", "--json", "--no-database", "--generate-field", "password").map((arg) => (arg === "prod/" ? "ops/" : arg)));

    expect(applied.code, applied.stderr).toBe(0);
    expect(JSON.parse(applied.stdout).secrets).toEqual([
      expect.objectContaining({ name: "vault/secret/ops/db/admin", generate_field: "password", result: expect.stringMatching(/^created sec_/) }),
    ]);
    const [secret] = JSON.parse((await cli(["secret", "list", "--prefix", "vault/secret/ops/", "--json"])).stdout);
    expect(secret.generate).toEqual({ length: 32, classes: ["lower", "upper", "digits"], field: "password" });

    const rotated = await cli(["rotate", "vault/secret/ops/db/admin", "--wait", "--json"]);

    expect(rotated.code, rotated.stdout + rotated.stderr).toBe(0);
    expect(JSON.parse(rotated.stdout).status).toBe("completed");
    const data = standin.kv.readData("ops/db/admin")!;
    expect(data["username"]).toBe("ops_admin");
    expect(data["password"]).toMatch(/^[A-Za-z0-9]{32}$/);
  });

  it("rejects an invalid --generate-field", async () => {
    const result = await cli(discoverArgs("--generate-field", "pass word"));

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--generate-field: must be a field name/);
  });

  it("apply names the flag of a missing local secret", async () => {
    const args = discoverArgs("--apply", "--json", "--no-database")
      .map((arg) => (arg === SECRET_ID_SECRET ? "vault/not-stored" : arg))
      .map((arg) => (arg === "prod/" ? "staging/" : arg));

    const result = await cli(args);

    expect(result.code).toBe(1);
    const [secret] = JSON.parse(result.stdout).secrets;
    expect(secret.name).toBe("vault/secret/staging/ignored");
    expect(secret.result).toMatch(/^failed: --secret-id-secret: names local secret 'vault\/not-stored', which does not exist/);
    expect(result.stdout).not.toContain("settings.auth");
  });

  it("apply names --role-id when the login fails", async () => {
    const args = discoverArgs("--apply", "--json", "--no-database")
      .map((arg) => (arg === appRole.roleId ? "not-the-role-id" : arg))
      .map((arg) => (arg === "prod/" ? "staging/" : arg));

    const result = await cli(args);

    expect(result.code).toBe(1);
    const [secret] = JSON.parse(result.stdout).secrets;
    expect(secret.result).toMatch(/^failed: .*log in with AppRole at auth\/approle .*\(400\); check --role-id and the secret_id in local secret vault\/broker-approle/);
    expect(secret.result).not.toContain("not-the-role-id");
  });

  it("requires VAULT_TOKEN", async () => {
    const result = await cli(discoverArgs(), { VAULT_TOKEN: "" });

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/VAULT_TOKEN is not set/);
  });

  it("names the flags of invalid options", async () => {
    const result = await cli(["discover", "vault", "--owner", "platform", "--auth", "approle", "--address", "http://vault.example.com"]);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--address \(or VAULT_ADDR\): must use https:\/\//);
    expect(result.stderr).toMatch(/--role-id: is required/);
    expect(result.stderr).toMatch(/--secret-id-secret: is required/);
  });

  it("reports a token without permission", async () => {
    standin.deny("secret/metadata/");
    try {
      const result = await cli(discoverArgs());
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/Vault denied permission to list KV paths at \S+ secret\/metadata\/prod\/; give the token in VAULT_TOKEN a policy that allows it/);
      expect(result.stderr).not.toMatch(/broker's Vault token|for secret discovery/);
      expect(result.stderr).not.toContain(listToken);
    } finally {
      standin.allow("secret/metadata/");
    }
  });

  it("names --address when Vault is unreachable", async () => {
    const closed = new VaultStandin();
    await closed.start();
    const address = closed.address;
    await closed.stop();

    const result = await cli(discoverArgs("--address", address));

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Vault is unreachable at \S+ secret\/metadata\/prod\/ \(ECONNREFUSED\); check that it is running and that --address \(or VAULT_ADDR\) is right/);
    expect(result.stderr).not.toContain("connection.address");
  });

  it("prints no token, secret_id or value", () => {
    const text = transcript.join("\n") + broker.output();

    for (const value of [listToken, appRole.secretId, "kv-value-one", "kv-value-two", "kv-value-three", "kv-value-five", "kv-value-six", "kv-value-seven"]) {
      expect(text).not.toContain(value);
    }
  });
});
