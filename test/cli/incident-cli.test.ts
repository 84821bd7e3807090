import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, privateKeyJwt, type SecretsBrokerClient } from "../../sdk/index.js";
import { expectAdmin, READ_SCOPE, registerWorkload, type SdkBroker, startSdkBroker } from "../sdk/sdk-fixtures.js";

const LEAKED = "leaked-token-4b1d9e07c2";

describe("secrets-broker incident", () => {
  let broker: SdkBroker;
  let client: SecretsBrokerClient;
  let valueFile: string;
  let secret: { id: string; name: string };
  let leaseId: string;
  const transcript: string[] = [];

  async function cli(args: string[]) {
    const result = await broker.process.cli(args, { BROKER_TOKEN: broker.adminToken });
    transcript.push(result.stdout, result.stderr);
    return result;
  }

  beforeAll(async () => {
    broker = await startSdkBroker();
    const workload = await registerWorkload(broker);
    secret = await expectAdmin(broker, 201, "POST", "/v1/secrets", { name: "cli/leaky", adapter: "local", kind: "static", owner: "team-payments", value: LEAKED });
    await expectAdmin(broker, 200, "PATCH", `/v1/secrets/${secret.id}`, { generate: { length: 32, field: "value" } });
    await expectAdmin(broker, 201, "POST", "/v1/grants", { service_account_id: workload.accountId, secret: secret.name, scopes: [READ_SCOPE], approved_by: "alice", justification: "CHG-9" });
    client = createClient({ broker: broker.address, identity: privateKeyJwt({ clientId: workload.accountId, key: workload.privateJwk as any }) });
    leaseId = (await client.getCredential(secret.name, { scope: READ_SCOPE })).leaseId;
    valueFile = path.join(broker.process.dataDir, "leaked.txt");
    await writeFile(valueFile, `${LEAKED}\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    await client?.close();
    await broker?.process.cleanup();
  });

  it("reports the leases of a leaked value from a value file", async () => {
    const result = await cli(["incident", "--value-file", valueFile, "--json"]);

    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.credentials.map((lease: any) => lease.lease_id)).toEqual([leaseId]);
    expect(report.secrets_to_rotate).toEqual([{ id: secret.id, name: secret.name }]);
  });

  it("starts the compromise rotation with --rotate, after which nothing is left to rotate", async () => {
    const rotated = await cli(["incident", "--value-file", valueFile, "--rotate"]);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toContain(`started compromise rotation rot_`);
    expect(rotated.stdout).toContain("affected systems:");

    const fingerprint = JSON.parse((await cli(["incident", "--value-file", valueFile, "--json"])).stdout).query.fingerprint;
    const after = await cli(["incident", "--fingerprint", fingerprint, "--json"]);

    expect(JSON.parse(after.stdout).secrets_to_rotate).toEqual([]);
  });

  it.each([
    ["both a fingerprint and a value file", () => ["incident", "--fingerprint", `hmac-sha256:${"a".repeat(64)}`, "--value-file", valueFile], 2, "not both"],
    ["an account without --from", () => ["incident", "--service-account", `sa_${"0".repeat(24)}`], 2, "--service-account needs --from"],
    ["a malformed fingerprint", () => ["incident", "--fingerprint", "abc"], 2, "--fingerprint must be"],
    ["no value and no account", () => ["incident"], 2, "give --fingerprint or --value-file"],
  ])("rejects %s", async (_name, args, code, message) => {
    const result = await cli(args());

    expect(result.code).toBe(code);
    expect(result.stderr).toContain(message);
  });

  it("points an auditor with a value file to --fingerprint", async () => {
    const auditor = await expectAdmin(broker, 201, "POST", "/v1/operator-tokens", { role: "auditor", name: "incident-auditor" });

    const result = await broker.process.cli(["incident", "--value-file", valueFile], { BROKER_TOKEN: auditor.token });
    transcript.push(result.stdout, result.stderr);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("an auditor passes --fingerprint");
  });

  it("never prints the leaked value", () => {
    expect(transcript.join("\n")).not.toContain(LEAKED);
  });
});
