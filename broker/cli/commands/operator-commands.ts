import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import { BrokerClient } from "../broker-client.js";
import { CliError } from "../cli-error.js";
import { parseTimeOption } from "../options.js";
import { printFields, printJson, printTable } from "../output.js";

export function addOperatorCommands(program: Command): void {
  addTokenCommands(program.command("token").description("manage operator tokens (admin role)"));
  addAuditCommands(program.command("audit").description("verify and export the audit log"));
}

function addTokenCommands(token: Command): void {
  token
    .command("create")
    .description("create an operator token; its value is printed once")
    .requiredOption("--role <role>", "admin, operator or auditor")
    .requiredOption("--name <name>", "who or what holds the token")
    .option("--expires-at <time>", "expiry: RFC 3339 or relative such as 90d")
    .option("--json", "print JSON")
    .action(async (options) => {
      const created = await BrokerClient.fromEnvironment().json("POST", "/v1/operator-tokens", {
        role: options.role,
        name: options.name,
        expires_at: options.expiresAt ? parseTimeOption("--expires-at", options.expiresAt) : undefined,
      });
      if (options.json) {
        return printJson(created);
      }
      printFields({ id: created.id, role: created.role, name: created.name, expires_at: created.expires_at });
      process.stdout.write(`\nToken (shown once, store it now):\n${created.token}\n`);
    });

  token
    .command("list")
    .description("list operator tokens (never their values)")
    .option("--json", "print JSON")
    .action(async (options) => {
      const items = await BrokerClient.fromEnvironment().listAll("/v1/operator-tokens");
      return options.json ? printJson(items) : printTable(items, ["id", "name", "role", "created_at", "expires_at", "revoked_at"]);
    });

  token
    .command("revoke")
    .description("revoke an operator token")
    .argument("<id>", "token id (tok_...)")
    .option("--json", "print JSON")
    .action(async (id: string, options) => {
      const revoked = await BrokerClient.fromEnvironment().json("POST", `/v1/operator-tokens/${encodeURIComponent(id)}/revoke`);
      return options.json ? printJson(revoked) : printFields(revoked);
    });
}

function addAuditCommands(audit: Command): void {
  audit
    .command("verify")
    .description("walk the audit hash chain; exits 1 when it is broken")
    .option("--json", "print JSON")
    .action(async (options) => {
      const result = await BrokerClient.fromEnvironment().json("GET", "/v1/audit/verify");
      if (options.json) {
        printJson(result);
      } else if (result.valid) {
        const pending = result.pending > 0 ? `, and ${result.pending} committed events not chained yet` : "";
        process.stdout.write(`audit chain valid: ${result.events} events${pending}\n`);
      }
      if (!result.valid) {
        throw new CliError(`audit chain broken at event ${result.first_invalid_seq}: ${result.reason}`);
      }
    });

  audit
    .command("export")
    .description("export audit events as NDJSON, oldest first")
    .option("--from <time>", "events at or after this time (RFC 3339 or relative such as -7d)")
    .option("--to <time>", "events before this time")
    .option("--actor <actor>", "only this actor, e.g. operator:tok_...")
    .option("--action <action>", "only this action, e.g. service_account.suspend")
    .option("--target <id>", "only events about this id")
    .option("--outcome <outcome>", "success, denied or failure")
    .option("--out <file>", "write to this file instead of standard output")
    .option("--json", "accepted for symmetry: the output is always NDJSON")
    .action(async (options) => {
      const query = new URLSearchParams(
        Object.entries({
          from: options.from ? parseTimeOption("--from", options.from) : undefined,
          to: options.to ? parseTimeOption("--to", options.to) : undefined,
          actor: options.actor,
          action: options.action,
          target: options.target,
          outcome: options.outcome,
        }).filter((entry): entry is [string, string] => entry[1] !== undefined),
      );
      const stream = await BrokerClient.fromEnvironment().stream(`/v1/audit/events?${query}`);
      const body = Readable.fromWeb(stream as import("node:stream/web").ReadableStream);
      await pipeline(body, options.out ? createWriteStream(options.out, { mode: 0o600 }) : process.stdout);
    });
}
