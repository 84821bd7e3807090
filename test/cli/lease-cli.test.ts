import { randomUUID } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrokerProcess, type CliResult, startBrokerProcess } from "../support/broker-process.js";
import { csvObjects, parseNdjson } from "../lineage/lineage-fixtures.js";

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** A registered service account that can sign client assertions. */
interface CliWorkload {
  accountId: string;
  applicationId: string;
  kid: string;
  privateKey: CryptoKey;
}

describe("secrets-broker leases and lineage commands", () => {
  let broker: BrokerProcess;
  let asAdmin: NodeJS.ProcessEnv;
  let asAuditor: NodeJS.ProcessEnv;
  let orders: CliWorkload;
  let billing: CliWorkload;
  const ordersLeases: string[] = [];
  let billingLease: string;
  const accessTokens: string[] = [];

  /** Calls the broker's HTTP API as the admin, failing the test on any error status. */
  async function api(method: string, route: string, body?: unknown): Promise<any> {
    const response = await fetch(`${broker.address}${route}`, {
      method,
      headers: { authorization: `Bearer ${asAdmin["BROKER_TOKEN"]}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    expect(response.ok, `${method} ${route}: ${text}`).toBe(true);
    return JSON.parse(text);
  }

  async function createWorkload(applicationId: string): Promise<CliWorkload> {
    const account = await api("POST", "/v1/service-accounts", {
      name: `cli-lease-sa-${randomUUID().slice(0, 8)}`,
      application_id: applicationId,
      technical_owner: "dana@example.com",
      expires_at: new Date(Date.now() + 30 * 86_400_000).toISOString(),
      allowed_scopes: ["orders.read"],
    });
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const kid = `cli-key-${randomUUID().slice(0, 8)}`;
    await api("POST", `/v1/service-accounts/${account.id}/keys`, { jwk: { ...(await exportJWK(publicKey)), kid } });
    return { accountId: account.id, applicationId, kid, privateKey };
  }

  /** Obtains an access token with a client assertion signed now, on the real clock. */
  async function issueToken(workload: CliWorkload): Promise<string> {
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
    const body = (await response.json()) as { access_token: string; lease_id: string };
    expect(response.status, JSON.stringify(body)).toBe(200);
    accessTokens.push(body.access_token);
    return body.lease_id;
  }

  async function cli(args: string[], environment: NodeJS.ProcessEnv = asAdmin): Promise<CliResult> {
    return broker.cli(args, environment);
  }

  function expectSuccess(result: CliResult): string {
    expect(result.code, result.stderr).toBe(0);
    return result.stdout;
  }

  beforeAll(async () => {
    broker = await startBrokerProcess();
    asAdmin = { BROKER_TOKEN: (await readFile(path.join(broker.dataDir, "admin-token"), "utf8")).trim() };

    const ordersApplication = await api("POST", "/v1/applications", {
      name: "cli-orders",
      technical_owner: "team-orders@example.com",
      business_owner: "carol@example.com",
    });
    const billingApplication = await api("POST", "/v1/applications", { name: "cli-billing", technical_owner: "team-billing@example.com" });
    orders = await createWorkload(ordersApplication.id);
    billing = await createWorkload(billingApplication.id);
    for (let index = 0; index < 3; index += 1) {
      ordersLeases.push(await issueToken(orders));
    }
    billingLease = await issueToken(billing);

    const auditor = JSON.parse(expectSuccess(await cli(["token", "create", "--role", "auditor", "--name", "cli-lease-auditor", "--json"])));
    asAuditor = { BROKER_TOKEN: auditor.token };
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  it("leases list filters by account and status", async () => {
    const listed = JSON.parse(expectSuccess(await cli(["leases", "list", "--service-account", orders.accountId, "--json"])));
    expect(listed.map((lease: { id: string }) => lease.id).sort()).toEqual([...ordersLeases].sort());
    expect(listed.every((lease: { status: string }) => lease.status === "active")).toBe(true);

    const byApplication = JSON.parse(expectSuccess(await cli(["leases", "list", "--application", billing.applicationId, "--json"])));
    expect(byApplication.map((lease: { id: string }) => lease.id)).toEqual([billingLease]);

    const revoked = JSON.parse(expectSuccess(await cli(["leases", "list", "--status", "revoked", "--json"])));
    expect(revoked).toEqual([]);

    const table = expectSuccess(await cli(["leases", "list", "--service-account", orders.accountId]));
    expect(table.split("\n")[0]).toMatch(/^ID\s+STATUS\s+KIND\s+SERVICE_ACCOUNT_ID/);
    for (const id of ordersLeases) {
      expect(table).toContain(id);
    }
  });

  it("leases list rejects a bad status or time with exit 2", async () => {
    const status = await cli(["leases", "list", "--status", "gone"]);
    expect(status.code).toBe(2);
    expect(status.stderr).toContain("--status");

    const time = await cli(["leases", "list", "--issued-after", "last week"]);
    expect(time.code).toBe(2);
    expect(time.stderr).toContain("--issued-after");
  });

  it("leases show prints one lease", async () => {
    const lease = JSON.parse(expectSuccess(await cli(["leases", "show", ordersLeases[0]!, "--json"])));
    expect(lease).toMatchObject({ id: ordersLeases[0], status: "active", service_account_id: orders.accountId, grant_type: "client_credentials" });

    const fields = expectSuccess(await cli(["leases", "show", ordersLeases[0]!]));
    expect(fields).toMatch(new RegExp(`^id\\s+${ordersLeases[0]}$`, "m"));
    expect(fields).toMatch(/^client_kid\s+cli-key-/m);
  });

  it("leases show reports a missing or malformed id with exit 1", async () => {
    const missing = await cli(["leases", "show", "lease_0123456789abcdef01234567"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("404");
    expect(missing.stdout).toBe("");

    const malformed = await cli(["leases", "show", "lease_../../v1/operator-tokens", "--json"]);
    expect(malformed.code).toBe(1);
    const error = JSON.parse(malformed.stderr);
    expect(error.problem.code).toBe("validation_failed");
  });

  it("leases renew extends a lease and keeps the new token off the screen", async () => {
    const renewed = JSON.parse(expectSuccess(await cli(["leases", "renew", ordersLeases[0]!, "--increment", "120", "--json"])));
    expect(renewed.lease_id).toBe(ordersLeases[0]);
    expect(renewed.lease_duration).toBe(120);
    expect(renewed.access_token).toMatch(/^eyJ/);
    accessTokens.push(renewed.access_token);

    const text = await cli(["leases", "renew", ordersLeases[0]!, "--increment", "60"]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^lease_duration\s+60$/m);
    expect(text.stdout).not.toContain("eyJ");
    expect(text.stderr).toContain("--json prints the new token");
  });

  it("leases renew rejects a bad increment", async () => {
    const words = await cli(["leases", "renew", ordersLeases[0]!, "--increment", "ten"]);
    expect(words.code).toBe(2);
    expect(words.stderr).toContain("--increment");

    const zero = await cli(["leases", "renew", ordersLeases[0]!, "--increment", "0"]);
    expect(zero.code).toBe(1);
    expect(zero.stderr).toContain("increment");
  });

  it("leases revoke revokes one lease once", async () => {
    const revoked = expectSuccess(await cli(["leases", "revoke", ordersLeases[1]!, "--reason", "cli test"]));
    expect(revoked).toBe(`revoked 1 lease\n${ordersLeases[1]}\n`);

    const again = expectSuccess(await cli(["leases", "revoke", ordersLeases[1]!, "--json"]));
    expect(JSON.parse(again)).toEqual({ revoked: 0, lease_ids: [], upstream: { revoked: 0, failed: 0, pending: 0 } });
    const text = expectSuccess(await cli(["leases", "revoke", ordersLeases[1]!]));
    expect(text).toContain("had already ended");
  });

  it("leases revoke-bulk needs exactly one scope", async () => {
    const none = await cli(["leases", "revoke-bulk", "--reason", "x"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("exactly one of");

    const two = await cli(["leases", "revoke-bulk", "--service-account", orders.accountId, "--application", orders.applicationId]);
    expect(two.code).toBe(2);

    const badPrefix = await cli(["leases", "revoke-bulk", "--prefix", "lease_xyz"]);
    expect(badPrefix.code).toBe(1);
    expect(badPrefix.stderr).toContain("prefix");
  });

  it("lets an auditor export lineage but not revoke", async () => {
    const exported = await cli(["lineage", "export"], asAuditor);
    expect(exported.code, exported.stderr).toBe(0);
    expect(parseNdjson(exported.stdout)).toHaveLength(4);

    const single = await cli(["leases", "revoke", billingLease], asAuditor);
    expect(single.code).toBe(1);
    expect(single.stderr).toContain("403");
    const bulk = await cli(["leases", "revoke-bulk", "--application", billing.applicationId], asAuditor);
    expect(bulk.code).toBe(1);
    expect(bulk.stderr).toContain("403");

    const lease = JSON.parse(expectSuccess(await cli(["leases", "show", billingLease, "--json"], asAuditor)));
    expect(lease.status).toBe("active");
  });

  it("leases revoke-bulk revokes an account's live leases and prints the count", async () => {
    const result = JSON.parse(expectSuccess(await cli(["leases", "revoke-bulk", "--service-account", orders.accountId, "--reason", "offboarding", "--json"])));
    expect(result.revoked).toBe(2);
    expect(result.lease_ids.sort()).toEqual([ordersLeases[0], ordersLeases[2]].sort());

    const text = expectSuccess(await cli(["leases", "revoke-bulk", "--service-account", orders.accountId]));
    expect(text).toBe("no live lease matched; nothing was revoked\n");
  });

  it("lineage export writes CSV to a private file", async () => {
    const out = path.join(broker.dataDir, "lineage.csv");
    const result = await cli(["lineage", "export", "--format", "csv", "--out", out]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe("");

    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const { rows } = csvObjects(await readFile(out, "utf8"));
    expect(rows.map((row) => row["lease_id"])).toEqual([...ordersLeases, billingLease]);
    const byId = new Map(rows.map((row) => [row["lease_id"], row]));
    expect(byId.get(ordersLeases[1]!)).toMatchObject({ end_reason: "revoked", revoke_reason: "cli test", business_owner: "carol@example.com" });
    expect(byId.get(ordersLeases[0]!)).toMatchObject({ end_reason: "revoked", revoke_reason: "offboarding", renew_count: "2" });
    expect(byId.get(billingLease)).toMatchObject({ end_reason: "", ended_at: "", source_address: "127.0.0.1", grant_id: "" });
  });

  it("lineage export filters and prints JSON", async () => {
    const json = JSON.parse(expectSuccess(await cli(["lineage", "export", "--application", billing.applicationId, "--json"])));
    expect(json.map((row: { lease_id: string }) => row.lease_id)).toEqual([billingLease]);

    const byAccount = parseNdjson(expectSuccess(await cli(["lineage", "export", "--service-account", orders.accountId, "--format", "ndjson"])));
    expect(byAccount.map((row) => row.lease_id)).toEqual(ordersLeases);

    const lastHour = parseNdjson(expectSuccess(await cli(["lineage", "export", "--from", "-1h", "--to", "+1h"])));
    expect(lastHour.map((row) => row.lease_id)).toEqual([...ordersLeases, billingLease]);

    const nextMinute = parseNdjson(expectSuccess(await cli(["lineage", "export", "--from", "+1m", "--to", "+2m"])));
    expect(nextMinute.map((row) => row.lease_id)).toEqual([billingLease]);

    const before = parseNdjson(expectSuccess(await cli(["lineage", "export", "--to", "2020-01-01T00:00:00Z"])));
    expect(before).toEqual([]);
  });

  it("lineage export rejects bad options with exit 2", async () => {
    const time = await cli(["lineage", "export", "--from", "next tuesday"]);
    expect(time.code).toBe(2);
    expect(time.stderr).toContain("--from");

    const format = await cli(["lineage", "export", "--format", "xml"]);
    expect(format.code).toBe(2);
    expect(format.stderr).toContain("--format");

    const conflict = await cli(["lineage", "export", "--format", "csv", "--json"]);
    expect(conflict.code).toBe(2);
    expect(JSON.parse(conflict.stderr).error).toContain("--json");
  });

  it("lineage export reports broker refusals and leaves no file", async () => {
    const out = path.join(broker.dataDir, "refused.csv");
    const badId = await cli(["lineage", "export", "--service-account", "app_0123456789abcdef01234567", "--out", out]);
    expect(badId.code).toBe(1);
    expect(badId.stderr).toContain("service_account_id");
    await expect(stat(out)).rejects.toThrow();

    const window = await cli(["lineage", "export", "--from", "+1h", "--to", "-1h"]);
    expect(window.code).toBe(1);
    expect(window.stderr).toContain("to: must be later than from");

    const unwritable = await cli(["lineage", "export", "--out", path.join(broker.dataDir, "missing-dir", "lineage.csv")]);
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).toContain("cannot write");
  });

  it("never prints an access token", async () => {
    expect(accessTokens).toHaveLength(5);
    const outputs = [
      (await readFile(path.join(broker.dataDir, "lineage.csv"), "utf8")),
      expectSuccess(await cli(["lineage", "export", "--json"])),
      expectSuccess(await cli(["lineage", "export"])),
      expectSuccess(await cli(["leases", "list", "--json"])),
      broker.output(),
    ];
    for (const output of outputs) {
      for (const token of accessTokens) {
        expect(output).not.toContain(token.split(".")[2]);
      }
    }
  });
});
