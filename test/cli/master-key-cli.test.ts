import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { masterKeyId } from "../../broker/crypto/master-key-ring.js";
import { type BrokerProcess, CLI_PATH, startBrokerProcess } from "../support/broker-process.js";

/** Maximum wait for a restarted broker to report ready on /readyz, in milliseconds. */
const READY_TIMEOUT_MS = 60_000;

interface StatusJson {
  source: string;
  current_key_id: string;
  key_ids: string[];
  usage: { master_key_id: string; current: boolean; loaded: boolean; data_keys: number; signing_keys: number }[];
}

describe("secrets-broker master-key", () => {
  let broker: BrokerProcess;
  let asAdmin: NodeJS.ProcessEnv;
  let keyFile: string;
  let restarted: ChildProcess | undefined;

  beforeAll(async () => {
    broker = await startBrokerProcess();
    asAdmin = { BROKER_TOKEN: (await readFile(path.join(broker.dataDir, "admin-token"), "utf8")).trim() };
    keyFile = path.join(broker.dataDir, "master.key");
  });

  afterAll(async () => {
    if (restarted && restarted.exitCode === null) {
      await new Promise((resolve) => {
        restarted!.once("exit", resolve);
        restarted!.kill("SIGTERM");
      });
    }
    await broker.cleanup();
  });

  async function status(): Promise<StatusJson> {
    const result = await broker.cli(["master-key", "status", "--json"], asAdmin);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as StatusJson;
  }

  async function fileKeyIds(): Promise<string[]> {
    return (await readFile(keyFile, "utf8"))
      .trim()
      .split("\n")
      .map((line) => masterKeyId(Buffer.from(line, "base64")));
  }

  it("status shows the file key", async () => {
    const reported = await status();

    expect(reported.source).toBe("file");
    expect(reported.key_ids).toEqual(await fileKeyIds());
    expect(reported.usage).toEqual([{ master_key_id: reported.current_key_id, current: true, loaded: true, data_keys: 0, signing_keys: 1 }]);
  });

  it("status prints a table", async () => {
    const result = await broker.cli(["master-key", "status"], asAdmin);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^current master key: [0-9a-f]{16} \(from the key file in the data directory\)\n/);
    expect(result.stdout).toMatch(/MASTER_KEY_ID\s+CURRENT\s+LOADED\s+DATA_KEYS\s+SIGNING_KEYS/);
  });

  it("rotate prints what happened", async () => {
    const [oldId] = await fileKeyIds();

    const result = await broker.cli(["master-key", "rotate"], asAdmin);

    expect(result.code, result.stderr).toBe(0);
    const [newId] = await fileKeyIds();
    expect(newId).not.toBe(oldId);
    expect(result.stdout).toBe(
      [
        `current master key: ${newId} (from the key file in the data directory)`,
        "generated a new master key and wrote it to the key file",
        `re-wrapped 0 data keys and 1 signing key from master key ${oldId}`,
        `master keys in use: ${newId}`,
        `removed master key ${oldId} from the key file`,
        "",
      ].join("\n"),
    );
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect(await fileKeyIds()).toEqual([newId]);
  });

  it("rotate --json prints the rotation", async () => {
    const before = (await status()).current_key_id;

    const result = await broker.cli(["master-key", "rotate", "--json"], asAdmin);

    expect(result.code, result.stderr).toBe(0);
    const rotation = JSON.parse(result.stdout);
    expect(rotation).toMatchObject({ source: "file", generated_key: true, retired_key_ids: [before] });
    expect(rotation.rewrapped).toEqual([{ master_key_id: before, data_keys: 0, signing_keys: 1 }]);
    expect(await fileKeyIds()).toEqual([rotation.current_key_id]);
  });

  it("auditor is refused", async () => {
    const created = await broker.cli(["token", "create", "--role", "auditor", "--name", "master-key-auditor", "--json"], asAdmin);
    const auditor = { BROKER_TOKEN: JSON.parse(created.stdout).token };

    const rotated = await broker.cli(["master-key", "rotate"], auditor);
    const reported = await broker.cli(["master-key", "status"], auditor);

    expect(rotated.code).toBe(1);
    expect(rotated.stderr).toContain("admin role");
    expect(reported.code).toBe(1);
    expect(reported.stderr).toContain("admin role");
  });

  it("rotate rejects unknown options", async () => {
    const result = await broker.cli(["master-key", "rotate", "--key", "abc"], asAdmin);

    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
  });

  it("output and log contain no key", async () => {
    const keys = (await readFile(keyFile, "utf8")).trim().split("\n");
    const results = [await broker.cli(["master-key", "status", "--json"], asAdmin), await broker.cli(["master-key", "rotate", "--json"], asAdmin)];
    const newKeys = (await readFile(keyFile, "utf8")).trim().split("\n");

    for (const key of [...keys, ...newKeys]) {
      for (const result of results) {
        expect(result.stdout).not.toContain(key);
        expect(result.stderr).not.toContain(key);
      }
      expect(broker.output()).not.toContain(key);
    }
  });

  it("restart reads the rotated key file", async () => {
    const expected = (await status()).current_key_id;
    expect(await broker.stop("SIGTERM")).toBe(0);

    const serve = await startServe({});

    const reported = await status();
    expect(reported.current_key_id).toBe(expected);
    expect(reported.key_ids).toEqual([expected]);
    expect(serve.output()).toContain("master keys open the stored keys");
    const keys = await broker.cli(["keys", "rotate", "--publish-delay", "0", "--json"], asAdmin);
    expect(keys.code, keys.stderr).toBe(0);
    expect(await stopServe()).toBe(0);
  });

  it("environment rotation runs across restarts", async () => {
    const [fileKey] = (await readFile(keyFile, "utf8")).trim().split("\n");
    const newKey = randomBytes(32).toString("base64");
    const newId = masterKeyId(Buffer.from(newKey, "base64"));
    const fileId = masterKeyId(Buffer.from(fileKey!, "base64"));

    await startServe({ BROKER_MASTER_KEY: `${newKey},${fileKey}` });
    const result = await broker.cli(["master-key", "rotate"], asAdmin);
    expect(await stopServe()).toBe(0);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(
      [
        `current master key: ${newId} (from BROKER_MASTER_KEY)`,
        `re-wrapped 0 data keys and 2 signing keys from master key ${fileId}`,
        `master keys in use: ${newId}`,
        `master key ${fileId} no longer wraps anything: remove it from BROKER_MASTER_KEY at the next restart`,
        "",
      ].join("\n"),
    );
    const oldOnly = await runServeToExit({ BROKER_MASTER_KEY: fileKey! });
    expect(oldOnly.code).toBe(1);
    expect(oldOnly.output).toContain(`wrapped by master key ${newId}, which it does not contain`);
    expect(oldOnly.output).not.toContain(newKey);
    expect(oldOnly.output).not.toContain(fileKey!);
    await startServe({ BROKER_MASTER_KEY: newKey });
    expect((await status()).usage).toEqual([{ master_key_id: newId, current: true, loaded: true, data_keys: 0, signing_keys: 2 }]);
    expect(await stopServe()).toBe(0);
  });

  /** Starts `secrets-broker serve` on the test broker's data directory, database and port, with `extra` variables. */
  async function startServe(extra: NodeJS.ProcessEnv): Promise<{ output: () => string }> {
    const child = spawn(process.execPath, [CLI_PATH, "serve"], { env: { ...broker.environment, ...extra }, stdio: ["ignore", "pipe", "pipe"] });
    restarted = child;
    let output = "";
    child.stdout!.on("data", (chunk) => (output += String(chunk)));
    child.stderr!.on("data", (chunk) => (output += String(chunk)));
    await waitUntilReady(broker.address, child, () => output);
    return { output: () => output };
  }

  function stopServe(): Promise<number | null> {
    const child = restarted!;
    if (child.exitCode !== null) {
      return Promise.resolve(child.exitCode);
    }
    return new Promise((resolve) => {
      child.once("exit", (code) => resolve(code));
      child.kill("SIGTERM");
    });
  }

  /** Runs `secrets-broker serve` expecting it to stop by itself, and returns its exit code and output. */
  function runServeToExit(extra: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
    const child = spawn(process.execPath, [CLI_PATH, "serve"], { env: { ...broker.environment, ...extra }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += String(chunk)));
    child.stderr.on("data", (chunk) => (output += String(chunk)));
    return new Promise((resolve) => child.once("exit", (code) => resolve({ code, output })));
  }
});

async function waitUntilReady(address: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`broker exited with ${child.exitCode} before it was ready:\n${output()}`);
    }
    const ready = await fetch(`${address}/readyz`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`broker was not ready within ${READY_TIMEOUT_MS} ms:\n${output()}`);
}
