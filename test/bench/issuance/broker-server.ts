import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { freePort } from "../../support/broker-process.js";

/**
 * The compiled CLI. This file runs compiled, from dist/test/bench/issuance, where the CLI is
 * three folders up; from source it is under dist/ at the package root.
 */
const CLI_PATH = fileURLToPath(
  new URL(import.meta.url.includes("/dist/test/") ? "../../../broker/cli/main.js" : "../../../dist/broker/cli/main.js", import.meta.url),
);

/**
 * Reads the Node.js flags of `npm start` from package.json, so that the benchmark runs the
 * broker as the README starts it: `exec node <flags> dist/broker/cli/main.js serve`.
 */
async function startFlags(): Promise<string[]> {
  const packageJson = fileURLToPath(new URL(import.meta.url.includes("/dist/test/") ? "../../../../package.json" : "../../../package.json", import.meta.url));
  const start: string = JSON.parse(await readFile(packageJson, "utf8")).scripts.start;
  const words = start.split(/\s+/);
  return words.slice(words.indexOf("node") + 1, words.findIndex((word) => word.endsWith("main.js")));
}

/** Time allowed for the broker to migrate and start listening, in milliseconds. */
const READY_TIMEOUT_MS = 60_000;
/** Time allowed for the broker to drain and exit after SIGTERM before it is killed, in milliseconds. */
const STOP_TIMEOUT_MS = 20_000;
/** Output kept for error messages: the last this many characters. */
const OUTPUT_TAIL_CHARS = 16_000;

/** A `secrets-broker serve` process that the benchmark started and owns. */
export interface BrokerServer {
  address: string;
  pid: number;
  dataDir: string;
  /** The environment the process runs with; an in-process runtime built from it opens the same database and keys. */
  environment: NodeJS.ProcessEnv;
  adminToken: string;
  outputTail(): string;
  stop(): Promise<void>;
  /** Stops the process if it still runs and deletes its data directory. */
  cleanup(): Promise<void>;
}

/**
 * Starts `node <npm start's flags> dist/broker/cli/main.js serve` on a free loopback port with a new data
 * directory, LOG_LEVEL=warn, a fixed master key and, for PostgreSQL, `databaseUrl`;
 * waits for /readyz and reads the first admin token from the data directory. With
 * `cpuProfileDir`, Node.js writes a V8 CPU profile of the process there when it exits.
 */
export async function startBrokerServer(databaseUrl: string | undefined, cpuProfileDir?: string): Promise<BrokerServer> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "secrets-broker-issuance-"));
  const port = await freePort();
  const address = `http://127.0.0.1:${port}`;
  const environment: NodeJS.ProcessEnv = {
    PATH: process.env["PATH"],
    HOME: process.env["HOME"],
    HOST: "127.0.0.1",
    PORT: String(port),
    BROKER_DATA_DIR: dataDir,
    BROKER_ISSUER: address,
    BROKER_MASTER_KEY: randomBytes(32).toString("base64"),
    LOG_LEVEL: "warn",
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  };

  const profiling = cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfileDir}`] : [];
  const child = spawn(process.execPath, [...(await startFlags()), ...profiling, CLI_PATH, "serve"], { env: environment, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + String(chunk)).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);

  const cleanup = async () => {
    await stopProcess(child);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await waitUntilReady(address, child, () => output);
    const adminToken = (await readFile(path.join(dataDir, "admin-token"), "utf8")).trim();
    return {
      address,
      pid: child.pid!,
      dataDir,
      environment,
      adminToken,
      outputTail: () => output,
      stop: () => stopProcess(child),
      cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function waitUntilReady(address: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`broker exited with code ${child.exitCode} before it was ready:\n${output()}`);
    }
    const ready = await fetch(`${address}/readyz`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) {
      return;
    }
    await sleep(100);
  }
  throw new Error(`broker on ${address} was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${output()}`);
}

/** Sends SIGTERM to this benchmark's own child and waits for it to exit; kills it with SIGKILL after STOP_TIMEOUT_MS. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** Reads the resident set size of process `pid` from the VmRSS line of /proc/<pid>/status, in bytes. */
export async function readRssBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
