import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, privateKeyJwt } from "../../sdk/index.js";
import { grantedSecret, READ_SCOPE, registerWorkload, type SdkBroker, startSdkBroker } from "../sdk/sdk-fixtures.js";

describe("secrets-broker evidence", () => {
  let broker: SdkBroker;
  let workDir: string;

  function cli(args: string[]) {
    return broker.process.cli(args, { BROKER_TOKEN: broker.adminToken });
  }

  beforeAll(async () => {
    broker = await startSdkBroker();
    const workload = await registerWorkload(broker);
    const secret = await grantedSecret(broker, workload.accountId);
    const client = createClient({ broker: broker.address, identity: privateKeyJwt({ clientId: workload.accountId, key: workload.privateJwk as any }) });
    await client.getCredential(secret.name, { scope: READ_SCOPE });
    await client.close();
    workDir = path.join(broker.process.dataDir, "evidence-work");
    await mkdir(workDir);
  });

  afterAll(async () => {
    await broker?.process.cleanup();
  });

  it("exports a pack that verifies against the broker's JWKS", async () => {
    const out = path.join(workDir, "pack");
    const exported = await cli(["evidence", "export", "--out", out, "--from", "-1h", "--json"]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(JSON.parse(exported.stdout).files).toBeGreaterThan(15);

    const verified = await cli(["evidence", "verify", out]);

    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/^valid: \d+ files and \d+ audit events, signed by key /);
  });

  it("verifies offline with a key file, and names a changed file", async () => {
    const out = path.join(workDir, "offline");
    expect((await cli(["evidence", "export", "--out", out])).code).toBe(0);
    const keyFile = path.join(workDir, "jwks.json");
    await writeFile(keyFile, await (await fetch(`${broker.address}/.well-known/jwks.json`)).text());
    expect((await cli(["evidence", "verify", out, "--key-file", keyFile])).code).toBe(0);

    const lineage = path.join(out, "lineage.csv");
    await writeFile(lineage, (await readFile(lineage, "utf8")).replace("credential", "credentiaI"));
    const tampered = await cli(["evidence", "verify", out, "--key-file", keyFile]);

    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toContain("lineage.csv: SHA-256 does not match the manifest: the file was changed");
  });

  it.each([
    ["an output directory that is not empty", async () => ["evidence", "export", "--out", workDir], 2, "is not empty"],
    ["a window that ends before it starts", async () => ["evidence", "export", "--out", path.join(workDir, "bad-window"), "--from", "-1h", "--to", "-2h"], 1, "must be later than from"],
    ["a directory that is not a pack", async () => ["evidence", "verify", workDir], 1, "manifest.json: missing"],
    ["both --jwks-url and --key-file", async () => ["evidence", "verify", workDir, "--jwks-url", "http://127.0.0.1:1/jwks", "--key-file", "k.json"], 2, "not both"],
  ])("rejects %s", async (_name, args, code, message) => {
    const result = await cli(await args());

    expect(result.code).toBe(code);
    expect(result.stderr).toContain(message);
  });

  it("leaves no directory behind when the broker refuses the export", async () => {
    const out = path.join(workDir, "refused");

    const result = await broker.process.cli(["evidence", "export", "--out", out], { BROKER_TOKEN: "sbo_invalid" });

    expect(result.code).toBe(1);
    await expect(readFile(path.join(out, "manifest.json"))).rejects.toThrow();
    await expect(mkdir(out)).resolves.toBeUndefined();
  });
});
