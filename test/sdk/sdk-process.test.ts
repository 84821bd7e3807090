import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { activeLeases, grantedSecret, registerWorkload, type SdkBroker, type SdkWorkload, startSdkBroker } from "./sdk-fixtures.js";

const CHILD_PATH = fileURLToPath(new URL("../../dist/test/sdk/sdk-child.js", import.meta.url));
const SDK_DIR = fileURLToPath(new URL("../../sdk", import.meta.url));
/** A child that is still running after this long was kept alive by something the SDK left behind. */
const EXIT_DEADLINE_MS = 20_000;
/** How long a child without close() is watched after its report: it must still be running. */
const STILL_RUNNING_MS = 2_000;

interface ChildResult {
  code: number | null;
  signal: string | null;
  report: { leases: string[]; closed: { revoked: number; failed: number } | null; resources: string[] } | null;
  stderr: string;
}

function childEnvironment(broker: SdkBroker, workload: SdkWorkload, secrets: string[], extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env["PATH"],
    BROKER_ADDR: broker.address,
    SDK_CLIENT_ID: workload.accountId,
    SDK_PRIVATE_JWK: JSON.stringify(workload.privateJwk),
    SDK_SECRETS: secrets.join(","),
    ...extra,
  };
}

function runChild(environment: NodeJS.ProcessEnv): Promise<ChildResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CHILD_PATH], { env: environment, timeout: EXIT_DEADLINE_MS, killSignal: "SIGKILL" }, (error, stdout, stderr) => {
      const line = stdout.trim().split("\n").pop() ?? "";
      resolve({
        code: exitCode(error),
        signal: error?.signal ?? null,
        report: line.startsWith("{") ? JSON.parse(line) : null,
        stderr,
      });
    });
  });
}

function exitCode(error: { code?: unknown } | null): number | null {
  if (error === null) {
    return 0;
  }
  return typeof error.code === "number" ? error.code : null;
}

describe("SDK in an application process", () => {
  let broker: SdkBroker;
  let workload: SdkWorkload;
  let secrets: string[];

  beforeAll(async () => {
    broker = await startSdkBroker();
    workload = await registerWorkload(broker);
    secrets = [(await grantedSecret(broker, workload.accountId)).name, (await grantedSecret(broker, workload.accountId)).name];
  });

  afterAll(async () => {
    await broker?.process.cleanup();
  });

  it("close() lets the process exit", async () => {
    const result = await runChild(childEnvironment(broker, workload, secrets));

    expect(result.signal, result.stderr).toBeNull();
    expect(result.code, result.stderr).toBe(0);
    expect(result.report!.leases).toHaveLength(2);
    expect(result.report!.closed).toEqual({ revoked: 3, failed: 0 });
    expect(result.report!.resources.filter((resource) => resource === "Timeout")).toEqual([]);
    expect(await activeLeases(broker, workload.accountId)).toEqual([]);
  });

  it("renewal timers keep the process alive", async () => {
    const child = spawn(process.execPath, [CHILD_PATH], { env: childEnvironment(broker, workload, secrets.slice(0, 1), { SDK_SKIP_CLOSE: "1" }) });
    try {
      const [firstOutput] = await once(child.stdout, "data");
      const report = JSON.parse(String(firstOutput));
      await new Promise((resolve) => setTimeout(resolve, STILL_RUNNING_MS));

      expect(child.exitCode).toBeNull();
      expect(report.resources).toContain("Timeout");
      expect(await activeLeases(broker, workload.accountId)).toHaveLength(2);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("SDK package boundary", () => {
  it("imports only its own files, node: built-ins and jose", async () => {
    const files = (await readdir(SDK_DIR)).filter((file) => file.endsWith(".ts"));
    const specifiers: string[] = [];
    for (const file of files) {
      const source = await readFile(path.join(SDK_DIR, file), "utf8");
      for (const match of source.matchAll(/\bfrom\s+"([^"]+)"/g)) specifiers.push(match[1]!);
    }

    const outside = specifiers.filter((specifier) => !/^\.\/[a-z-]+\.js$/.test(specifier) && !specifier.startsWith("node:") && specifier !== "jose");
    expect(files.length).toBeGreaterThan(5);
    expect(outside).toEqual([]);
  });
});
