import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { freePort } from "../../support/broker-process.js";

/**
 * The compiled CLI. This file runs compiled, from dist/test/bench/rotation, where the CLI is
 * three folders up. From source it is under dist/ at the package root.
 */
const CLI_PATH = fileURLToPath(
  new URL(import.meta.url.includes("/dist/test/") ? "../../../broker/cli/main.js" : "../../../dist/broker/cli/main.js", import.meta.url),
);

/** A scheduler tick every second (croner syntax with a seconds field). */
export const EVERY_SECOND = "* * * * * *";
/** Time allowed for a process to migrate until /readyz returns 200, in milliseconds. */
const READY_TIMEOUT_MS = 60_000;
/** Time allowed for a process to drain and exit after SIGTERM before it is killed, in milliseconds. */
const STOP_TIMEOUT_MS = 20_000;
/** Output kept per process: the whole log of a run, up to this many characters. */
const OUTPUT_LIMIT_CHARS = 8 * 1024 * 1024;

/** One `secrets-broker serve` process that the benchmark started and owns. */
export interface Replica {
  address: string;
  pid: number;
  /** Every line the process wrote so far, up to OUTPUT_LIMIT_CHARS. */
  output(): string;
}

/** Broker processes that share one PostgreSQL database and one master key. */
export interface ReplicaSet {
  replicas: Replica[];
  adminToken: string;
  stop(): Promise<void>;
}

/**
 * Starts `count` serve processes on free loopback ports against `databaseUrl`, each with
 * its own data directory, the same master key and issuer, LOG_LEVEL=info (the default)
 * and a rotation tick every second. The first process initializes the database and
 * writes the admin token, and the others start once it is ready.
 */
export async function startReplicaSet(databaseUrl: string, count: number): Promise<ReplicaSet> {
  const masterKey = randomBytes(32).toString("base64");
  const started: StartedProcess[] = [];
  const stop = async () => {
    await Promise.all(started.map((member) => member.stop()));
  };

  try {
    const first = await startProcess(databaseUrl, masterKey, undefined);
    started.push(first);
    const others = await Promise.all(
      Array.from({ length: count - 1 }, async () => {
        const member = await startProcess(databaseUrl, masterKey, first.replica.address);
        started.push(member);
        return member;
      }),
    );
    const adminToken = (await readFile(path.join(first.dataDir, "admin-token"), "utf8")).trim();
    return { replicas: [first, ...others].map((member) => member.replica), adminToken, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

interface StartedProcess {
  replica: Replica;
  dataDir: string;
  stop(): Promise<void>;
}

async function startProcess(databaseUrl: string, masterKey: string, issuer: string | undefined): Promise<StartedProcess> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "secrets-broker-rotation-"));
  const port = await freePort();
  const address = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [CLI_PATH, "serve"], {
    env: {
      PATH: process.env["PATH"],
      HOME: process.env["HOME"],
      HOST: "127.0.0.1",
      PORT: String(port),
      BROKER_DATA_DIR: dataDir,
      BROKER_ISSUER: issuer ?? address,
      BROKER_MASTER_KEY: masterKey,
      DATABASE_URL: databaseUrl,
      LOG_LEVEL: "info",
      BROKER_ROTATION_SCHEDULE: EVERY_SECOND,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output += String(chunk);
    if (output.length > OUTPUT_LIMIT_CHARS) {
      output = output.slice(-OUTPUT_LIMIT_CHARS);
    }
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);

  const stop = async () => {
    await stopProcess(child);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await waitUntilReady(address, child, () => output);
  } catch (error) {
    await stop();
    throw error;
  }
  return { replica: { address, pid: child.pid!, output: () => output }, dataDir, stop };
}

async function waitUntilReady(address: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`broker process exited with code ${child.exitCode} before it was ready:\n${output().slice(-4000)}`);
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
  throw new Error(`broker process on ${address} was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${output().slice(-4000)}`);
}

/** Sends SIGTERM to this benchmark's own child and waits for it to exit, or kills it with SIGKILL after STOP_TIMEOUT_MS. */
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

/** Parses the pino JSON lines of a process's output, skipping lines that are not JSON. */
export function logLines(replica: Replica): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const line of replica.output().split("\n")) {
    if (!line.startsWith("{")) {
      continue;
    }
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // A line cut off at the start of the kept output.
    }
  }
  return lines;
}
