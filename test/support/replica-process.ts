import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { CLI_PATH, freePort } from "./broker-process.js";

/** Time a `serve` process may take before /readyz returns 200, in milliseconds. */
const READY_TIMEOUT_MS = 60_000;

/** What every replica of one broker shares: the database, the master key and the issuer. */
export interface ReplicaSettings {
  databaseUrl: string;
  masterKey: string;
  /**
   * The `BROKER_ISSUER`, the same for every replica so that client assertions and tokens
   * work on any of them. Without it, the process's own address.
   */
  issuer?: string;
  /** More environment variables, such as `BROKER_ROTATION_SCHEDULE`. */
  environment?: NodeJS.ProcessEnv;
}

/**
 * A `secrets-broker serve` process started by a test, with its own port and data
 * directory. Unlike `startBrokerProcess`, it joins a database that other processes
 * may share, and it exposes the child so that a test can kill it with any signal.
 */
export interface ReplicaProcess {
  address: string;
  dataDir: string;
  pid: number;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Sends `signal` and resolves with the exit code, or null when a signal ended the process. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Kills the process if it still runs and removes its data directory. */
  cleanup(): Promise<void>;
}

export async function startReplicaProcess(settings: ReplicaSettings): Promise<ReplicaProcess> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "sb-replica-"));
  const port = await freePort();
  const address = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [CLI_PATH, "serve"], {
    env: {
      PATH: process.env["PATH"],
      HOME: process.env["HOME"],
      HOST: "127.0.0.1",
      PORT: String(port),
      BROKER_DATA_DIR: dataDir,
      DATABASE_URL: settings.databaseUrl,
      BROKER_MASTER_KEY: settings.masterKey,
      BROKER_ISSUER: settings.issuer ?? address,
      LOG_LEVEL: "info",
      ...settings.environment,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += String(chunk)));
  child.stderr.on("data", (chunk) => (output += String(chunk)));

  const replica: ReplicaProcess = {
    address,
    dataDir,
    pid: child.pid!,
    child,
    output: () => output,
    stop: (signal = "SIGTERM") => signalAndWait(child, signal),
    cleanup: async () => {
      await signalAndWait(child, "SIGKILL");
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  try {
    await waitUntilReady(replica);
  } catch (error) {
    await replica.cleanup();
    throw error;
  }
  return replica;
}

/** Reads the admin token that the process which initialized the database wrote to its data directory. */
export async function readAdminToken(replica: ReplicaProcess): Promise<string> {
  return (await readFile(path.join(replica.dataDir, "admin-token"), "utf8")).trim();
}

/** Parses the pino JSON lines of a process's output, skipping lines that are not JSON. */
export function logLines(replica: ReplicaProcess): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const line of replica.output().split("\n")) {
    if (!line.startsWith("{")) {
      continue;
    }
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // A line cut off by SIGKILL.
    }
  }
  return lines;
}

async function waitUntilReady(replica: ReplicaProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (replica.child.exitCode !== null) {
      throw new Error(`broker process exited with ${replica.child.exitCode} before it was ready:\n${replica.output()}`);
    }
    const ready = await fetch(`${replica.address}/readyz`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`broker process on ${replica.address} was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${replica.output()}`);
}

function signalAndWait(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve(child.exitCode);
  }
  return new Promise((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.kill(signal);
  });
}
