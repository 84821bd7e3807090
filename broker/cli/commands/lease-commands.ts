import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { type Command, Option } from "commander";
import { BrokerClient } from "../broker-client.js";
import { CliError, UsageError } from "../cli-error.js";
import { parseIntegerOption, parseTimeOption } from "../options.js";
import { printFields, printJson, printTable } from "../output.js";

const LEASE_STATUSES = ["active", "expired", "revoked", "revoke_failed"];
const LINEAGE_FORMATS = ["json", "ndjson", "csv"];
const LEASE_COLUMNS = ["id", "status", "kind", "service_account_id", "audience", "issued_at", "expires_at", "revoked_at"];

/** Adds the `leases` commands (list, show, renew, revoke, revoke-bulk) and `lineage export`. */
export function addLeaseCommands(program: Command): void {
  addLeasesCommands(program.command("leases").description("list, inspect, renew and revoke leases"));
  addLineageCommands(program.command("lineage").description("export credential lineage: which identity held which credential, and how it ended"));
}

function addLeasesCommands(leases: Command): void {
  leases
    .command("list")
    .description("list leases, with filters")
    .option("--service-account <id>", "only this service account's leases (sa_...)")
    .option("--application <id>", "only this application's leases (app_...)")
    .addOption(new Option("--status <status>", "only leases with this status").choices(LEASE_STATUSES))
    .option("--issued-after <time>", "only leases issued at or after this time (RFC 3339 or relative such as -7d)")
    .option("--issued-before <time>", "only leases issued before this time (RFC 3339 or relative such as -1h)")
    .option("--json", "print JSON")
    .action(async (options) => {
      const items = await BrokerClient.fromEnvironment().listAll("/v1/leases", {
        service_account_id: options.serviceAccount,
        application_id: options.application,
        status: options.status,
        issued_after: options.issuedAfter ? parseTimeOption("--issued-after", options.issuedAfter) : undefined,
        issued_before: options.issuedBefore ? parseTimeOption("--issued-before", options.issuedBefore) : undefined,
      });
      return options.json ? printJson(items) : printTable(items, LEASE_COLUMNS);
    });

  leases
    .command("show")
    .description("show a lease")
    .argument("<id>", "lease id (lease_...)")
    .option("--json", "print JSON")
    .action(async (id: string, options) => {
      const lease = await BrokerClient.fromEnvironment().json("GET", `/v1/leases/${encodeURIComponent(id)}`);
      return options.json ? printJson(lease) : printFields(lease);
    });

  leases
    .command("renew")
    .description("extend a live lease from now, capped by its max TTL; an access-token lease gets a new token")
    .argument("<id>", "lease id (lease_...)")
    .option("--increment <seconds>", "requested extension in seconds; defaults to the account's max token TTL", (value) =>
      parseIntegerOption("--increment", value),
    )
    .option("--json", "print JSON, including the new access token of an access-token lease")
    .action(async (id: string, options) => {
      const body = options.increment === undefined ? {} : { increment: options.increment };
      const renewed = await BrokerClient.fromEnvironment().json("POST", `/v1/leases/${encodeURIComponent(id)}/renew`, body);
      if (options.json) {
        return printJson(renewed);
      }
      printFields({
        lease_id: renewed.lease_id,
        lease_duration: renewed.lease_duration,
        renewable: renewed.renewable,
        expires_at: renewed.expires_at,
        ...(renewed.version === undefined ? {} : { version: renewed.version, current_version: renewed.current_version }),
      });
      for (const warning of renewed.warnings ?? []) {
        process.stderr.write(`warning: ${warning}\n`);
      }
      if (renewed.access_token) {
        process.stderr.write("note: a new access token was issued and the lease's previous token is no longer active; --json prints the new token\n");
      }
    });

  leases
    .command("revoke")
    .description("revoke a lease and its children")
    .argument("<id>", "lease id (lease_...)")
    .option("--reason <text>", "why, recorded on the lease and in the audit log")
    .option("--json", "print JSON")
    .action(async (id: string, options) => {
      const body = options.reason === undefined ? {} : { reason: options.reason };
      const result = await BrokerClient.fromEnvironment().json("POST", `/v1/leases/${encodeURIComponent(id)}/revoke`, body);
      if (options.json) {
        return printJson(result);
      }
      printRevoked(result, `lease ${id} had already ended; nothing was revoked`);
    });

  leases
    .command("revoke-bulk")
    .description("revoke every live lease of a service account, an application or a secret, or with a lease-id prefix, children included")
    .option("--service-account <id>", "revoke this service account's leases (sa_...)")
    .option("--application <id>", "revoke this application's leases (app_...)")
    .option("--secret <id>", "revoke the leases of this secret (sec_...)")
    .option("--secret-version <version>", "with --secret: only leases that carried this version")
    .option("--prefix <prefix>", "revoke leases whose id starts with this prefix (lease_ and hex characters)")
    .option("--reason <text>", "why, recorded on each lease and in the audit log")
    .option("--json", "print JSON")
    .action(async (options) => {
      const scopes = { service_account_id: options.serviceAccount, application_id: options.application, secret_id: options.secret, prefix: options.prefix };
      if (Object.values(scopes).filter((value) => value !== undefined).length !== 1) {
        throw new UsageError("give exactly one of --service-account <id>, --application <id>, --secret <id> or --prefix <prefix>");
      }
      if (options.secretVersion !== undefined && options.secret === undefined) {
        throw new UsageError("--secret-version needs --secret <id>");
      }
      const result = await BrokerClient.fromEnvironment().json("POST", "/v1/leases/revoke", {
        ...scopes,
        secret_version: options.secretVersion,
        reason: options.reason,
      });
      if (options.json) {
        return printJson(result);
      }
      printRevoked(result, "no live lease matched; nothing was revoked");
    });
}

interface RevokeResult {
  revoked: number;
  lease_ids: string[];
  upstream?: { revoked: number; failed: number; pending: number };
}

/** Prints what was revoked; throws when upstream credentials are still live, so that the command exits 1. */
function printRevoked(result: RevokeResult, noneMessage: string): void {
  if (result.revoked === 0) {
    process.stdout.write(`${noneMessage}\n`);
    return;
  }
  process.stdout.write(`revoked ${result.revoked} ${result.revoked === 1 ? "lease" : "leases"}\n`);
  for (const id of result.lease_ids) {
    process.stdout.write(`${id}\n`);
  }
  const upstream = result.upstream;
  if (upstream && upstream.revoked > 0) {
    process.stdout.write(`upstream credentials revoked: ${upstream.revoked}\n`);
  }
  if (upstream && upstream.failed + upstream.pending > 0) {
    throw new CliError(
      `${upstream.failed} upstream credentials could not be revoked and ${upstream.pending} are still queued; ` +
        "the broker retries them: list them with `secrets-broker leases list --status revoke_failed`",
    );
  }
}

function addLineageCommands(lineage: Command): void {
  lineage
    .command("export")
    .description("export one row per lease: account, application, owners, grant type, scopes, issue, renewal and end")
    .option("--service-account <id>", "only this service account's leases (sa_...)")
    .option("--application <id>", "only this application's leases (app_...)")
    .option("--from <time>", "only leases still live at or after this time (RFC 3339 or relative such as -7d)")
    .option("--to <time>", "only leases issued before this time (RFC 3339 or relative such as -1h)")
    .addOption(new Option("--format <format>", "output format, ndjson unless given; in CSV, cells starting with = + - @ get a leading '").choices(LINEAGE_FORMATS))
    .option("--out <file>", "write to this file (mode 0600) instead of standard output")
    .option("--json", "same as --format json")
    .action(async (options) => {
      const format = exportFormat(options.format, Boolean(options.json));
      const query = new URLSearchParams(
        Object.entries({
          service_account_id: options.serviceAccount,
          application_id: options.application,
          from: options.from ? parseTimeOption("--from", options.from) : undefined,
          to: options.to ? parseTimeOption("--to", options.to) : undefined,
          format,
        }).filter((entry): entry is [string, string] => entry[1] !== undefined),
      );
      const stream = await BrokerClient.fromEnvironment().stream(`/v1/lineage?${query}`);
      await writeExport(stream, options.out);
    });
}

function exportFormat(format: string | undefined, json: boolean): string {
  if (json && format !== undefined && format !== "json") {
    throw new UsageError(`--json asks for --format json, which conflicts with --format ${format}; give one of them`);
  }
  return json ? "json" : (format ?? "ndjson");
}

/**
 * Streams the export body to standard output or to `out`. A file is written under a
 * temporary name and renamed when complete, so an export that breaks off leaves no
 * partial file behind and an existing file untouched.
 */
async function writeExport(stream: ReadableStream<Uint8Array>, out: string | undefined): Promise<void> {
  const body = Readable.fromWeb(stream as WebReadableStream<Uint8Array>);
  if (out === undefined) {
    await pipeline(body, process.stdout).catch((error: unknown) => {
      throw incompleteExport(error, "the output above is incomplete");
    });
    return;
  }

  const partial = `${out}.${process.pid}.partial`;
  try {
    await pipeline(body, createWriteStream(partial, { mode: 0o600 }));
    await rename(partial, out);
  } catch (error) {
    await rm(partial, { force: true });
    const fileError = error as NodeJS.ErrnoException;
    if (fileError.syscall !== undefined && fileError.path === partial) {
      throw new CliError(`cannot write ${out} (${fileError.code}); check that its directory exists and is writable`);
    }
    throw incompleteExport(error, `${out} was not written`);
  }
}

function incompleteExport(error: unknown, consequence: string): CliError {
  const reason = (error as { code?: string }).code ?? (error as Error).message;
  return new CliError(`the lineage export stopped before it was complete (${reason}); ${consequence}. Run the export again`);
}
