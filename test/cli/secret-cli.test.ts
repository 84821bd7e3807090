import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrokerProcess, type CliResult, startBrokerProcess } from "../support/broker-process.js";

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const READ_SCOPE = "secrets:read";
const GENERATED_LENGTH = 40;
const FINGERPRINT_PATTERN = /^hmac-sha256:[0-9a-f]{64}$/;

/** A service account registered through the CLI, with the private key its client assertions are signed with. */
interface CliWorkload {
  accountId: string;
  kid: string;
  privateKey: CryptoKey;
}

/** A secret created by one test and used by later ones. */
interface CreatedSecret {
  id: string;
  name: string;
}

describe("secrets-broker secret and grant commands", () => {
  let broker: BrokerProcess;
  let asAdmin: NodeJS.ProcessEnv;
  let asAuditor: NodeJS.ProcessEnv;
  let workload: CliWorkload;
  let filesDir: string;

  // Values the test gives the broker or obtains from it. No CLI output may contain any of them.
  const plainValue = `plain-${randomBytes(18).toString("base64url")}`;
  const jsonValue = { username: `orders_${randomBytes(6).toString("hex")}`, password: `pw-${randomBytes(18).toString("base64url")}` };
  let generatedValue: string | undefined;
  // Standard output and error of every CLI run, checked at the end for values.
  const transcript: string[] = [];

  const generated: CreatedSecret = { id: "", name: "cli/payments/api-key" };
  const plain: CreatedSecret = { id: "", name: "cli/orders/api-token" };
  const structured: CreatedSecret = { id: "", name: "cli/orders/db-admin" };
  const dynamic: CreatedSecret = { id: "", name: "cli/orders/db-readonly" };
  let plainGrantId: string;
  let structuredGrantId: string;
  let generatedGrantId: string;
  let audienceGrantId: string;
  let plainLeaseId: string;

  async function cli(args: string[], environment: NodeJS.ProcessEnv = asAdmin): Promise<CliResult> {
    const result = await broker.cli(args, environment);
    transcript.push(result.stdout, result.stderr);
    return result;
  }

  function expectSuccess(result: CliResult): string {
    expect(result.code, result.stderr).toBe(0);
    return result.stdout;
  }

  async function cliJson(args: string[], environment: NodeJS.ProcessEnv = asAdmin): Promise<any> {
    return JSON.parse(expectSuccess(await cli([...args, "--json"], environment)));
  }

  async function writeFixture(name: string, content: string): Promise<string> {
    const file = path.join(filesDir, name);
    await writeFile(file, content, { mode: 0o600 });
    return file;
  }

  /** Obtains an access token with a client assertion signed now, on the real clock. */
  async function issueAccessToken(): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: workload.kid })
      .setIssuer(workload.accountId)
      .setSubject(workload.accountId)
      .setAudience(broker.address)
      .setJti(randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(workload.privateKey);
    const response = await fetch(`${broker.address}/v1/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: assertion }),
    });
    const body = (await response.json()) as { access_token: string; scope: string };
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body.scope).toBe(READ_SCOPE);
    return body.access_token;
  }

  /** Requests a credential as the workload and returns the status and parsed body. */
  async function requestCredential(secret: string, ttl?: number): Promise<{ status: number; body: any }> {
    const response = await fetch(`${broker.address}/v1/credentials`, {
      method: "POST",
      headers: { authorization: `Bearer ${await issueAccessToken()}`, "content-type": "application/json" },
      body: JSON.stringify({ secret, ...(ttl ? { ttl } : {}) }),
    });
    return { status: response.status, body: await response.json() };
  }

  beforeAll(async () => {
    broker = await startBrokerProcess();
    asAdmin = { BROKER_TOKEN: (await readFile(path.join(broker.dataDir, "admin-token"), "utf8")).trim() };
    filesDir = path.join(broker.dataDir, "cli-files");
    await mkdir(filesDir, { mode: 0o700 });

    await cliJson(["app", "create", "--name", "cli-orders", "--technical-owner", "team-orders@example.com"]);
    const account = await cliJson([
      "sa", "create", "--name", "cli-orders-api", "--application", "cli-orders", "--technical-owner", "dana@example.com",
      "--expires-at", "30d", "--scope", READ_SCOPE,
    ]);
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const jwkFile = await writeFixture("workload-key.json", JSON.stringify(await exportJWK(publicKey)));
    const key = await cliJson(["sa", "key", "add", account.id, "--jwk-file", jwkFile]);
    workload = { accountId: account.id, kid: key.kid, privateKey };

    const auditor = await cliJson(["token", "create", "--role", "auditor", "--name", "cli-secret-auditor"]);
    asAuditor = { BROKER_TOKEN: auditor.token };
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  it("secret create generates a value", async () => {
    const created = await cliJson(["secret", "create", "--name", generated.name, "--owner", "team-payments", "--length", String(GENERATED_LENGTH)]);
    generated.id = created.id;

    expect(created.id).toMatch(/^sec_[0-9a-f]{24}$/);
    expect(created).toMatchObject({ name: generated.name, adapter: "local", kind: "static", owner: "team-payments", current_version: "1" });
    expect(created.generate).toEqual({ length: GENERATED_LENGTH, classes: ["lower", "upper", "digits"], field: "value" });
    expect(created).not.toHaveProperty("value");
    expect(created.default_ttl).toBe(3600);
    expect(created.max_ttl).toBe(86400);
  });

  it("secret create reads plain-text value file", async () => {
    const valueFile = await writeFixture("api-token.txt", `${plainValue}\n`);
    const result = await cli([
      "secret", "create", "--name", plain.name, "--owner", "team-orders", "--value-file", valueFile, "--default-ttl", "600", "--max-ttl", "1200",
    ]);
    const fields = expectSuccess(result);

    const id = /^id\s+(sec_[0-9a-f]{24})$/m.exec(fields)?.[1];
    expect(id, fields).toBeDefined();
    plain.id = id!;
    expect(fields).toMatch(new RegExp(`^name\\s+${plain.name}$`, "m"));
    expect(fields).toMatch(/^current_version\s+1$/m);
    expect(fields).toMatch(/^generate\s+-$/m);
    expect(fields).toMatch(/^default_ttl\s+600$/m);
    expect(fields).toMatch(/^max_ttl\s+1200$/m);
  });

  it("secret create reads JSON value file", async () => {
    const valueFile = await writeFixture("db-admin.json", `${JSON.stringify(jsonValue, null, 2)}\n`);
    const created = await cliJson(["secret", "create", "--name", structured.name, "--owner", "team-orders", "--value-file", valueFile]);
    structured.id = created.id;

    expect(created).toMatchObject({ name: structured.name, adapter: "local", kind: "static", current_version: "1", generate: null });
    expect(created).not.toHaveProperty("value");
  });

  it("secret create reads settings file", async () => {
    const settings = {
      connection: { host: "127.0.0.1", port: 5432, database: "orders", username: "broker_admin", password_secret: structured.name, ssl: "disable" },
      role: { member_of: ["orders_readonly"], name_prefix: "orders" },
    };
    const settingsFile = await writeFixture("db-readonly.json", JSON.stringify(settings));
    const created = await cliJson([
      "secret", "create", "--name", dynamic.name, "--owner", "team-orders", "--adapter", "postgres", "--kind", "dynamic", "--settings-file", settingsFile,
    ]);
    dynamic.id = created.id;

    expect(created).toMatchObject({ adapter: "postgres", kind: "dynamic", current_version: null, generate: null });
    expect(created.settings.connection).toMatchObject({ host: "127.0.0.1", database: "orders", password_secret: structured.name });
    expect(created.settings.role).toMatchObject({ member_of: ["orders_readonly"], name_prefix: "orders" });
  });

  it("secret list filters by owner, prefix and adapter", async () => {
    const all = await cliJson(["secret", "list"]);
    expect(all.map((secret: { name: string }) => secret.name).sort()).toEqual([generated.name, plain.name, structured.name, dynamic.name].sort());

    const byOwner = await cliJson(["secret", "list", "--owner", "team-payments"]);
    expect(byOwner.map((secret: { id: string }) => secret.id)).toEqual([generated.id]);

    const byPrefix = await cliJson(["secret", "list", "--prefix", "cli/orders/db-"]);
    expect(byPrefix.map((secret: { id: string }) => secret.id).sort()).toEqual([structured.id, dynamic.id].sort());

    const byAdapter = await cliJson(["secret", "list", "--adapter", "postgres"]);
    expect(byAdapter.map((secret: { id: string }) => secret.id)).toEqual([dynamic.id]);

    const combined = await cliJson(["secret", "list", "--owner", "team-orders", "--adapter", "local"]);
    expect(combined.map((secret: { id: string }) => secret.id).sort()).toEqual([plain.id, structured.id].sort());

    const none = await cliJson(["secret", "list", "--prefix", "no-such-prefix/"]);
    expect(none).toEqual([]);
  });

  it("secret list prints a table", async () => {
    const table = expectSuccess(await cli(["secret", "list", "--owner", "team-orders"]));
    const lines = table.trimEnd().split("\n");

    expect(lines[0]).toMatch(/^ID\s+NAME\s+ADAPTER\s+KIND\s+OWNER\s+CURRENT_VERSION\s+DEFAULT_TTL\s+MAX_TTL$/);
    expect(lines).toHaveLength(4);
    expect(table).toMatch(new RegExp(`^${plain.id}\\s+${plain.name}\\s+local\\s+static\\s+team-orders\\s+1\\s+600\\s+1200$`, "m"));
    expect(table).toMatch(new RegExp(`^${dynamic.id}\\s+${dynamic.name}\\s+postgres\\s+dynamic\\s+team-orders\\s+-\\s+3600\\s+86400$`, "m"));
    expect(table).not.toContain(generated.id);

    const empty = expectSuccess(await cli(["secret", "list", "--prefix", "no-such-prefix/"]));
    expect(empty).toBe("(none)\n");
  });

  it("secret versions shows stage and fingerprint", async () => {
    const fingerprints = new Set<string>();
    for (const secret of [generated, plain, structured]) {
      const versions = await cliJson(["secret", "versions", secret.id]);
      expect(versions).toHaveLength(1);
      expect(versions[0]).toMatchObject({ version: "1", stage: "current", rotation_id: null, retired_at: null });
      expect(versions[0].fingerprint).toMatch(FINGERPRINT_PATTERN);
      expect(Object.keys(versions[0]).sort()).toEqual(["created_at", "created_by", "fingerprint", "promoted_at", "retired_at", "rotation_id", "stage", "version"]);
      fingerprints.add(versions[0].fingerprint);
    }
    expect(fingerprints.size).toBe(3);

    const table = expectSuccess(await cli(["secret", "versions", plain.id]));
    expect(table).toMatch(/^VERSION\s+STAGE\s+FINGERPRINT\s+CREATED_AT\s+PROMOTED_AT$/m);
    expect(table).toMatch(/^1\s+current\s+hmac-sha256:[0-9a-f]{64}\s+\S+\s+\S+$/m);

    const dynamicVersions = await cliJson(["secret", "versions", dynamic.id]);
    expect(dynamicVersions).toEqual([]);
  });

  it("version fingerprint matches value file", async () => {
    const [version] = await cliJson(["secret", "versions", plain.id]);
    const response = await fetch(`${broker.address}/v1/fingerprints`, {
      method: "POST",
      headers: { authorization: `Bearer ${asAdmin["BROKER_TOKEN"]}`, "content-type": "application/json" },
      body: JSON.stringify({ value: plainValue }),
    });
    const lookup = (await response.json()) as { fingerprint: string; matches: unknown[] };

    expect(response.status, JSON.stringify(lookup)).toBe(200);
    expect(lookup.fingerprint).toBe(version.fingerprint);
    expect(lookup.matches).toEqual([{ secret_id: plain.id, name: plain.name, version: "1", stage: "current" }]);
  });

  it("secret versions rejects bad ids", async () => {
    const missing = await cli(["secret", "versions", "sec_0123456789abcdef01234567"]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toContain("404");
    expect(missing.stderr).toContain("sec_0123456789abcdef01234567 not found");

    const unknownName = await cli(["secret", "versions", "sec_../../v1/grants"]);
    expect(unknownName.code).toBe(1);
    expect(unknownName.stderr).toContain("no secret is named 'sec_../../v1/grants'");
  });

  it("grant create allows a secret", async () => {
    const created = await cliJson([
      "grant", "create", "--service-account", workload.accountId, "--secret", plain.name, "--scope", READ_SCOPE, "--max-ttl", "900",
      "--not-after", "90d", "--approved-by", "alice@example.com", "--justification", "CHG-1234",
    ]);
    plainGrantId = created.id;

    expect(created.id).toMatch(/^grt_[0-9a-f]{24}$/);
    expect(created).toMatchObject({
      service_account_id: workload.accountId,
      secret_id: plain.id,
      secret: plain.name,
      audience: null,
      scopes: [READ_SCOPE],
      max_ttl: 900,
      approved_by: "alice@example.com",
      justification: "CHG-1234",
      status: "active",
      revoked_at: null,
    });
    const daysToEnd = (Date.parse(created.not_after) - Date.now()) / 86_400_000;
    expect(daysToEnd).toBeGreaterThan(89.9);
    expect(daysToEnd).toBeLessThanOrEqual(90);
  });

  it("grant create prints the grant as fields", async () => {
    const structuredGrant = expectSuccess(await cli(["grant", "create", "--service-account", workload.accountId, "--secret", structured.name]));
    structuredGrantId = /^id\s+(grt_[0-9a-f]{24})$/m.exec(structuredGrant)![1]!;
    expect(structuredGrant).toMatch(new RegExp(`^secret_id\\s+${structured.id}$`, "m"));
    expect(structuredGrant).toMatch(/^scopes\s+-$/m);
    expect(structuredGrant).toMatch(/^status\s+active$/m);

    const generatedGrant = await cliJson(["grant", "create", "--service-account", workload.accountId, "--secret", generated.name, "--scope", READ_SCOPE]);
    generatedGrantId = generatedGrant.id;
    expect(generatedGrant.secret_id).toBe(generated.id);
  });

  it("grant create allows a future audience", async () => {
    const created = await cliJson([
      "grant", "create", "--service-account", workload.accountId, "--audience", "https://reports.example.com", "--not-before", "1d",
      "--not-after", "30d",
    ]);
    audienceGrantId = created.id;

    expect(created).toMatchObject({ audience: "https://reports.example.com", secret_id: null, secret: null, status: "not_yet_valid" });
    expect(Date.parse(created.not_before)).toBeGreaterThan(Date.now() + 23 * 3_600_000);
  });

  it("grant list filters by account, secret and status", async () => {
    const all = await cliJson(["grant", "list", "--service-account", workload.accountId]);
    expect(all.map((grant: { id: string }) => grant.id).sort()).toEqual([plainGrantId, structuredGrantId, generatedGrantId, audienceGrantId].sort());

    const bySecret = await cliJson(["grant", "list", "--secret-id", plain.id]);
    expect(bySecret.map((grant: { id: string }) => grant.id)).toEqual([plainGrantId]);

    const active = await cliJson(["grant", "list", "--service-account", workload.accountId, "--status", "active"]);
    expect(active.map((grant: { id: string }) => grant.id).sort()).toEqual([plainGrantId, structuredGrantId, generatedGrantId].sort());

    const pending = await cliJson(["grant", "list", "--status", "not_yet_valid"]);
    expect(pending.map((grant: { id: string }) => grant.id)).toEqual([audienceGrantId]);

    const revoked = await cliJson(["grant", "list", "--status", "revoked"]);
    expect(revoked).toEqual([]);

    const otherAccount = await cliJson(["grant", "list", "--service-account", "sa_0123456789abcdef01234567"]);
    expect(otherAccount).toEqual([]);
  });

  it("grant list prints a table", async () => {
    const table = expectSuccess(await cli(["grant", "list", "--secret-id", plain.id]));

    expect(table).toMatch(/^ID\s+SERVICE_ACCOUNT_ID\s+SECRET\s+AUDIENCE\s+SCOPES\s+MAX_TTL\s+NOT_AFTER\s+STATUS$/m);
    expect(table).toMatch(new RegExp(`^${plainGrantId}\\s+${workload.accountId}\\s+${plain.name}\\s+-\\s+${READ_SCOPE}\\s+900\\s+\\S+Z\\s+active$`, "m"));
    expect(table.trimEnd().split("\n")).toHaveLength(2);
  });

  it("workload obtains plain-text value", async () => {
    const { status, body } = await requestCredential(plain.name, 3600);

    expect(status, JSON.stringify(body)).toBe(200);
    expect(body.data).toEqual({ value: plainValue });
    expect(body.version).toBe("1");
    expect(body.renewable).toBe(true);
    // The grant's --max-ttl of 900 s caps the requested 3600 s, below the secret's max TTL of 1200 s.
    expect(body.lease_duration).toBe(900);
    plainLeaseId = body.lease_id;
  });

  it("workload obtains JSON value", async () => {
    const { status, body } = await requestCredential(structured.name);

    expect(status, JSON.stringify(body)).toBe(200);
    expect(body.data).toEqual(jsonValue);
    expect(body.version).toBe("1");
  });

  it("workload obtains generated value", async () => {
    const { status, body } = await requestCredential(generated.name);

    expect(status, JSON.stringify(body)).toBe(200);
    expect(Object.keys(body.data)).toEqual(["value"]);
    expect(body.data.value).toMatch(new RegExp(`^[A-Za-z0-9]{${GENERATED_LENGTH}}$`));
    generatedValue = body.data.value;
  });

  it("grant revoke ends the grant and its leases", async () => {
    const revoked = await cliJson(["grant", "revoke", plainGrantId, "--reason", "access no longer needed"]);
    expect(revoked).toMatchObject({ id: plainGrantId, status: "revoked", revoke_reason: "access no longer needed" });
    expect(revoked.revoked_at).not.toBeNull();
    expect(revoked.revoked_by).toMatch(/^operator:tok_/);

    const lease = await cliJson(["leases", "show", plainLeaseId]);
    expect(lease.status).toBe("revoked");

    const rejected = await requestCredential(plain.name);
    expect(rejected.status).toBe(403);
    expect(rejected.body.code).toBe("no_grant");

    const listed = await cliJson(["grant", "list", "--status", "revoked"]);
    expect(listed.map((grant: { id: string }) => grant.id)).toEqual([plainGrantId]);
  });

  it("grant revoke twice exits 1", async () => {
    const again = await cli(["grant", "revoke", plainGrantId]);

    expect(again.code).toBe(1);
    expect(again.stdout).toBe("");
    expect(again.stderr).toContain("409");
    expect(again.stderr).toContain("already revoked");
  });

  it("secret delete refuses a secret in use", async () => {
    const refused = await cli(["secret", "delete", structured.name]);

    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`is used by the settings of ${dynamic.name}`);
  });

  it("secret delete revokes the secret's grants", async () => {
    const settings = { connection: { host: "127.0.0.1", port: 5432, database: "orders", username: "broker_admin", password_secret: plain.name }, role: { member_of: [] } };
    const patched = await fetch(`${broker.address}/v1/secrets/${dynamic.id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${asAdmin["BROKER_TOKEN"]}`, "content-type": "application/json" },
      body: JSON.stringify({ settings }),
    });
    expect(patched.status).toBe(200);
    const deleted = await cliJson(["secret", "delete", structured.id, "--reason", "moved to vault"]);
    expect(deleted.id).toBe(structured.id);
    expect(deleted.deleted_at).not.toBeNull();

    const listed = await cliJson(["secret", "list"]);
    expect(listed.map((secret: { id: string }) => secret.id)).not.toContain(structured.id);

    const [grant] = await cliJson(["grant", "list", "--secret-id", structured.id]);
    expect(grant).toMatchObject({ id: structuredGrantId, status: "revoked" });
    expect(grant.revoke_reason).toContain("moved to vault");

    const rejected = await requestCredential(structured.name);
    expect(rejected.status).toBe(403);
    expect(rejected.body.code).toBe("no_grant");
  });

  it("secret delete twice exits 1", async () => {
    const again = await cli(["secret", "delete", structured.id]);

    expect(again.code).toBe(1);
    expect(again.stdout).toBe("");
    expect(again.stderr).toContain("404");
  });

  it("bad options and files exit 2", async () => {
    const missingFile = path.join(filesDir, "missing.txt");
    const emptyFile = await writeFixture("empty.txt", "\n");
    const brokenJson = await writeFixture("broken.json", '{"password": ');
    const numberField = await writeFixture("number-field.json", '{"host": "127.0.0.1", "port": 5432}');
    const plainFile = await writeFixture("plain.txt", "a-plain-value\n");
    const cases: { args: string[]; message: string }[] = [
      { args: ["secret", "create", "--owner", "team-orders"], message: "--name" },
      { args: ["secret", "create", "--name", "bad/no-owner"], message: "--owner" },
      { args: ["secret", "create", "--name", "bad/kind", "--owner", "o", "--kind", "ephemeral"], message: "--kind" },
      { args: ["secret", "create", "--name", "bad/length", "--owner", "o", "--length", "ten"], message: "--length must be a whole number" },
      { args: ["secret", "create", "--name", "bad/ttl", "--owner", "o", "--max-ttl", "1h"], message: "--max-ttl must be a whole number" },
      { args: ["secret", "create", "--name", "bad/both", "--owner", "o", "--value-file", plainFile, "--length", "20"], message: "--length" },
      { args: ["secret", "create", "--name", "bad/missing", "--owner", "o", "--value-file", missingFile], message: "cannot be read (ENOENT)" },
      { args: ["secret", "create", "--name", "bad/directory", "--owner", "o", "--value-file", filesDir], message: "cannot be read (EISDIR)" },
      { args: ["secret", "create", "--name", "bad/empty", "--owner", "o", "--value-file", emptyFile], message: "is empty" },
      { args: ["secret", "create", "--name", "bad/broken", "--owner", "o", "--value-file", brokenJson], message: "is not valid JSON" },
      { args: ["secret", "create", "--name", "bad/number", "--owner", "o", "--value-file", numberField], message: "field 'port' must be a string" },
      {
        args: ["secret", "create", "--name", "bad/settings", "--owner", "o", "--adapter", "postgres", "--kind", "dynamic", "--settings-file", missingFile],
        message: "--settings-file",
      },
      {
        args: ["secret", "create", "--name", "bad/settings", "--owner", "o", "--adapter", "postgres", "--kind", "dynamic", "--settings-file", brokenJson],
        message: "must be a readable JSON file",
      },
      { args: ["grant", "create", "--secret", plain.name], message: "--service-account" },
      { args: ["grant", "create", "--service-account", workload.accountId], message: "exactly one of --secret or --audience" },
      {
        args: ["grant", "create", "--service-account", workload.accountId, "--secret", plain.name, "--audience", "https://reports.example.com"],
        message: "exactly one of --secret or --audience",
      },
      { args: ["grant", "create", "--service-account", workload.accountId, "--secret", plain.name, "--not-after", "next year"], message: "--not-after" },
      { args: ["grant", "create", "--service-account", workload.accountId, "--secret", plain.name, "--max-ttl", "-5"], message: "--max-ttl" },
      { args: ["grant", "list", "--status", "paused"], message: "--status" },
      { args: ["secret", "versions"], message: "missing required argument 'secret'" },
    ];

    for (const { args, message } of cases) {
      const result = await cli(args);
      const label = args.join(" ");
      expect(result.code, `${label}: ${result.stderr}`).toBe(2);
      expect(result.stderr, label).toContain(message);
      expect(result.stdout, label).toBe("");
    }

    const created = await cliJson(["secret", "list", "--prefix", "bad/"]);
    expect(created).toEqual([]);
    const grants = await cliJson(["grant", "list", "--service-account", workload.accountId]);
    expect(grants).toHaveLength(4);
  });

  it("broker validation errors exit 1", async () => {
    const arraySettings = await writeFixture("array-settings.json", "[]");
    const noConnection = await writeFixture("no-connection.json", JSON.stringify({ role: { member_of: ["orders_readonly"] } }));
    const emptyObject = await writeFixture("empty-object.json", "{}");
    const cases: { args: string[]; status: number; code: string; field?: string }[] = [
      { args: ["secret", "create", "--name", "Bad Name", "--owner", "o"], status: 400, code: "validation_failed", field: "name" },
      { args: ["secret", "create", "--name", "bad/adapter", "--owner", "o", "--adapter", "no-such-adapter"], status: 400, code: "validation_failed", field: "adapter" },
      { args: ["secret", "create", "--name", "bad/vault", "--owner", "o", "--adapter", "vault"], status: 400, code: "validation_failed", field: "settings.connection" },
      { args: ["secret", "create", "--name", "bad/short", "--owner", "o", "--length", "4"], status: 400, code: "validation_failed", field: "generate.length" },
      { args: ["secret", "create", "--name", "bad/zero", "--owner", "o", "--length", "0"], status: 400, code: "validation_failed", field: "generate.length" },
      { args: ["secret", "create", "--name", "bad/ttl", "--owner", "o", "--max-ttl", "30"], status: 400, code: "validation_failed", field: "max_ttl" },
      { args: ["secret", "create", "--name", "bad/local-dynamic", "--owner", "o", "--kind", "dynamic"], status: 400, code: "validation_failed", field: "kind" },
      { args: ["secret", "create", "--name", "bad/fields", "--owner", "o", "--value-file", emptyObject], status: 400, code: "validation_failed", field: "value" },
      {
        args: ["secret", "create", "--name", "bad/array", "--owner", "o", "--adapter", "postgres", "--kind", "dynamic", "--settings-file", arraySettings],
        status: 400,
        code: "validation_failed",
        field: "settings",
      },
      {
        args: ["secret", "create", "--name", "bad/connection", "--owner", "o", "--adapter", "postgres", "--kind", "dynamic", "--settings-file", noConnection],
        status: 400,
        code: "validation_failed",
        field: "settings.connection",
      },
      { args: ["secret", "create", "--name", plain.name, "--owner", "o"], status: 409, code: "conflict" },
      { args: ["grant", "create", "--service-account", workload.accountId, "--secret", "bad/no-such-secret"], status: 400, code: "validation_failed", field: "secret" },
      { args: ["grant", "create", "--service-account", "app_0123456789abcdef01234567", "--secret", plain.name], status: 400, code: "validation_failed", field: "service_account_id" },
      { args: ["grant", "create", "--service-account", workload.accountId, "--secret", plain.name, "--max-ttl", "5"], status: 400, code: "validation_failed", field: "max_ttl" },
      { args: ["grant", "revoke", "grt_0123456789abcdef01234567"], status: 404, code: "not_found" },
    ];

    for (const { args, status, code, field } of cases) {
      const result = await cli([...args, "--json"]);
      const label = args.join(" ");
      expect(result.code, `${label}: ${result.stderr}`).toBe(1);
      expect(result.stdout, label).toBe("");
      const { error, problem } = JSON.parse(result.stderr);
      expect(error, label).toContain(`broker returned ${status}`);
      expect(problem.code, label).toBe(code);
      if (field) {
        expect(problem.invalid_params.map((param: { name: string }) => param.name), label).toContain(field);
      }
    }

    const text = await cli(["secret", "create", "--name", "Bad Name", "--owner", "o"]);
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/^error: broker returned 400: name: must be a path such as db\/orders-readonly/);

    const created = await cliJson(["secret", "list", "--prefix", "bad/"]);
    expect(created).toEqual([]);
  });

  it("auditor cannot change secrets or grants", async () => {
    const valueFile = await writeFixture("auditor-value.txt", "auditor-attempt-value\n");
    const attempts = [
      ["secret", "create", "--name", "cli/auditor/api-key", "--owner", "audit"],
      ["secret", "create", "--name", "cli/auditor/value", "--owner", "audit", "--value-file", valueFile],
      ["secret", "delete", generated.id],
      ["grant", "create", "--service-account", workload.accountId, "--secret", generated.name],
      ["grant", "revoke", generatedGrantId],
    ];
    for (const args of attempts) {
      const result = await cli(args, asAuditor);
      const label = args.join(" ");
      expect(result.code, label).toBe(1);
      expect(result.stdout, label).toBe("");
      expect(result.stderr, label).toContain("403");
      expect(result.stderr, label).toContain("needs the operator role");
    }

    const secrets = await cliJson(["secret", "list", "--prefix", "cli/"], asAuditor);
    expect(secrets.map((secret: { id: string }) => secret.id).sort()).toEqual([generated.id, plain.id, dynamic.id].sort());
    const versions = await cliJson(["secret", "versions", generated.id], asAuditor);
    expect(versions[0].stage).toBe("current");
    const grant = (await cliJson(["grant", "list", "--secret-id", generated.id], asAuditor))[0];
    expect(grant).toMatchObject({ id: generatedGrantId, status: "active" });
  });

  it("never prints a secret value", async () => {
    expect(generatedValue).toBeDefined();
    const values = [plainValue, jsonValue.username, jsonValue.password, generatedValue!];
    expect(transcript.length).toBeGreaterThan(100);

    for (const output of transcript) {
      for (const value of values) {
        expect(output).not.toContain(value);
      }
    }
    for (const value of values) {
      expect(broker.output()).not.toContain(value);
    }
  });
});
