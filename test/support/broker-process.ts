import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createScratchDatabase } from "./test-database.js";

/** The compiled CLI; `npm test` compiles first (pretest). */
export const CLI_PATH = fileURLToPath(new URL("../../dist/broker/cli/main.js", import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A broker started as a real process with `secrets-broker serve`, on PGlite or a fresh PostgreSQL database. */
export interface BrokerProcess {
  address: string;
  dataDir: string;
  environment: NodeJS.ProcessEnv;
  output: () => string;
  cli(args: string[], extra?: NodeJS.ProcessEnv): Promise<CliResult>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Sends a signal without waiting for the process to exit. */
  signal(signal: NodeJS.Signals): void;
  /** Starts the broker again on the same port, data directory and database, after a stop. */
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once("error", reject);
  });
}

/** Runs the CLI with the given environment and collects its exit code and output. */
export function runCli(args: string[], environment: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI_PATH, ...args], { env: environment, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts `secrets-broker serve`; `extra` adds variables to its environment (and to every `cli` run). */
export async function startBrokerProcess(extra: NodeJS.ProcessEnv = {}): Promise<BrokerProcess> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "sb-cli-"));
  const port = await freePort();
  const address = `http://127.0.0.1:${port}`;
  const database = await createScratchDatabase("sbcli");
  const environment: NodeJS.ProcessEnv = {
    PATH: process.env["PATH"],
    HOME: process.env["HOME"],
    HOST: "127.0.0.1",
    PORT: String(port),
    BROKER_DATA_DIR: dataDir,
    BROKER_ADDR: address,
    LOG_LEVEL: "debug",
    ...(database ? { DATABASE_URL: database.url } : {}),
    ...extra,
  };

  let output = "";
  const serve = async (): Promise<ChildProcess> => {
    const started = spawn(process.execPath, [CLI_PATH, "serve"], { env: environment, stdio: ["ignore", "pipe", "pipe"] });
    started.stdout!.on("data", (chunk) => (output += String(chunk)));
    started.stderr!.on("data", (chunk) => (output += String(chunk)));
    await waitUntilReady(address, started, () => output);
    return started;
  };
  let child = await serve();

  return {
    address,
    dataDir,
    environment,
    output: () => output,
    cli: (args, extra = {}) => runCli(args, { ...environment, ...extra }),
    stop: (signal = "SIGTERM") => stopProcess(child, signal),
    signal: (signal) => void child.kill(signal),
    restart: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        throw new Error("restart() needs a stopped broker: call stop() first");
      }
      child = await serve();
    },
    cleanup: async () => {
      if (child.exitCode === null) {
        await stopProcess(child, "SIGKILL");
      }
      await rm(dataDir, { recursive: true, force: true });
      await database?.drop();
    },
  };
}

async function waitUntilReady(address: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`broker exited with ${child.exitCode} before it was ready:\n${output()}`);
    }
    try {
      const response = await fetch(`${address}/readyz`);
      if (response.ok) {
        return;
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`broker was not ready within 60 s:\n${output()}`);
}

function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  if (child.exitCode !== null) {
    return Promise.resolve(child.exitCode);
  }
  return new Promise((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.kill(signal);
  });
}
