import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { Command } from "commander";
import { extract as extractTar } from "tar";
import { verifyEvidencePack } from "../../evidence/evidence-verify.js";
import { BrokerClient } from "../broker-client.js";
import { CliError, UsageError } from "../cli-error.js";
import { parseTimeOption } from "../options.js";
import { printFields, printJson } from "../output.js";

/** How long the broker may take to build an evidence pack before its download begins, in milliseconds. */
const PACK_BUILD_TIMEOUT_MS = 30 * 60_000;

/** Adds `evidence export` and `evidence verify`. */
export function addEvidenceCommands(program: Command): void {
  const evidence = program.command("evidence").description("export and verify signed evidence packs for auditors");

  evidence
    .command("export")
    .description("download a signed evidence pack and unpack it into a new directory")
    .requiredOption("--out <dir>", "directory to create; it must not exist, or be empty")
    .option("--from <time>", "start of the activity window (RFC 3339 or relative such as -90d)")
    .option("--to <time>", "end of the activity window; now by default")
    .option("--json", "print JSON")
    .action(async (options) => {
      await ensureEmpty(options.out);
      const query = new URLSearchParams();
      if (options.from) query.set("from", parseTimeOption("--from", options.from));
      if (options.to) query.set("to", parseTimeOption("--to", options.to));
      const stream = await BrokerClient.fromEnvironment().stream(`/v1/evidence?${query}`, PACK_BUILD_TIMEOUT_MS);
      await mkdir(options.out, { recursive: true, mode: 0o700 });
      try {
        await pipeline(Readable.fromWeb(stream as WebReadableStream), extractTar({ cwd: options.out, strict: true }));
      } catch (error) {
        await rm(options.out, { recursive: true, force: true });
        throw new CliError(`the evidence download failed and ${options.out} was removed (${(error as Error).message})`);
      }
      const manifest = JSON.parse(await readFile(`${options.out}/manifest.json`, "utf8"));
      const summary = { out: options.out, files: manifest.files.length, audit_events: manifest.audit_segment.events, window_from: manifest.window.from, window_to: manifest.window.to };
      return options.json ? printJson(summary) : printFields(summary);
    });

  evidence
    .command("verify")
    .description("check an evidence pack: the manifest signature, every file's SHA-256, and the audit chain segment")
    .argument("<dir>", "the pack's directory")
    .option("--jwks-url <url>", "where the broker's public keys are; BROKER_ADDR/.well-known/jwks.json by default")
    .option("--key-file <file>", "a JSON file with the broker's public JWK or JWKS, to verify offline")
    .option("--json", "print JSON")
    .action(async (dir: string, options) => {
      if (options.jwksUrl && options.keyFile) {
        throw new UsageError("give --jwks-url or --key-file, not both");
      }
      const result = await verifyEvidencePack(dir, await loadKeys(options));
      if (options.json) {
        printJson(result);
      } else {
        process.stdout.write(result.valid ? `valid: ${result.files} files and ${result.audit_events} audit events, signed by key ${result.signed_by}\n` : "");
      }
      if (!result.valid) {
        throw new CliError(`the evidence pack in ${dir} does not verify:\n${result.problems.map((problem) => `  ${problem}`).join("\n")}`);
      }
    });
}

async function ensureEmpty(dir: string): Promise<void> {
  const existing = await readdir(dir).catch((error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? undefined : Promise.reject(error)));
  if (existing !== undefined && existing.length > 0) {
    throw new UsageError(`--out ${dir} is not empty; give a new directory, so that no file of another pack gets mixed in`);
  }
}

async function loadKeys(options: { jwksUrl?: string; keyFile?: string }): Promise<{ keys: any[] }> {
  if (options.keyFile) {
    const parsed = JSON.parse(await readFile(options.keyFile, "utf8").catch(() => {
      throw new UsageError(`--key-file ${options.keyFile} cannot be read`);
    }));
    return Array.isArray(parsed.keys) ? parsed : { keys: [parsed] };
  }
  const url = options.jwksUrl ?? `${BrokerClient.fromEnvironment().address}/.well-known/jwks.json`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    if (!response.ok) throw new Error(`status ${response.status}`);
    return (await response.json()) as { keys: any[] };
  } catch (error) {
    throw new CliError(`cannot read the broker's keys from ${url} (${(error as Error).message}); give --key-file to verify offline`);
  }
}
