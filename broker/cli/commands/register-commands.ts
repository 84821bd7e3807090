import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { BrokerClient } from "../broker-client.js";
import { CliError, UsageError } from "../cli-error.js";
import { collect, parseIntegerOption, parseTimeOption } from "../options.js";
import { printFields, printJson, printTable } from "../output.js";

const ACCOUNT_COLUMNS = ["id", "name", "kind", "status", "technical_owner", "expires_at", "next_review_at", "review_overdue"];

export function addRegisterCommands(program: Command): void {
  addApplicationCommands(program.command("app").description("manage applications"));
  addServiceAccountCommands(program.command("sa").description("manage service accounts"));
}

function addApplicationCommands(app: Command): void {
  app
    .command("create")
    .description("register an application")
    .requiredOption("--name <name>", "application name (lowercase, digits, . _ -)")
    .requiredOption("--technical-owner <owner>", "team or person who runs it")
    .option("--business-owner <owner>", "person accountable for it")
    .option("--criticality <level>", "low, medium, high or critical", "medium")
    .option("--regulated", "the application is an in-scope system under NIS2")
    .option("--json", "print JSON")
    .action(async (options) => {
      const created = await BrokerClient.fromEnvironment().json("POST", "/v1/applications", {
        name: options.name,
        technical_owner: options.technicalOwner,
        business_owner: options.businessOwner,
        criticality: options.criticality,
        regulated: Boolean(options.regulated),
      });
      return options.json ? printJson(created) : printFields(created);
    });

  app
    .command("list")
    .description("list applications")
    .option("--json", "print JSON")
    .action(async (options) => {
      const items = await BrokerClient.fromEnvironment().listAll("/v1/applications");
      return options.json ? printJson(items) : printTable(items, ["id", "name", "technical_owner", "criticality", "regulated"]);
    });
}

function addServiceAccountCommands(sa: Command): void {
  sa.command("create")
    .description("register a service account")
    .requiredOption("--name <name>", "account name, also shown in lineage")
    .requiredOption("--application <id-or-name>", "application id (app_...) or name")
    .requiredOption("--technical-owner <owner>", "person or team answerable for the account")
    .requiredOption("--expires-at <time>", "expiry: RFC 3339 or relative such as 90d")
    .option("--kind <kind>", "workload, ci, automation or supplier", "workload")
    .option("--privileged", "the account holds privileged access")
    .option("--review-interval-days <days>", "days between access reviews", (value) => parseIntegerOption("--review-interval-days", value))
    .option("--max-token-ttl <seconds>", "longest access-token TTL in seconds", (value) => parseIntegerOption("--max-token-ttl", value))
    .option("--audience <audience>", "allowed audience (repeatable)", collect)
    .option("--scope <scope>", "allowed scope (repeatable)", collect)
    .option("--supplier-name <name>", "supplier name (kind supplier)")
    .option("--contract-ref <ref>", "supplier contract reference (kind supplier)")
    .option("--approved-by <person>", "who approved supplier access (kind supplier)")
    .option("--approved-at <time>", "when supplier access was approved (kind supplier)")
    .option("--contract-ends-at <time>", "when the supplier contract ends (kind supplier, optional)")
    .option("--json", "print JSON")
    .action(async (options) => {
      const client = BrokerClient.fromEnvironment();
      const body = {
        name: options.name,
        application_id: await resolveApplicationId(client, options.application),
        technical_owner: options.technicalOwner,
        expires_at: parseTimeOption("--expires-at", options.expiresAt),
        kind: options.kind,
        privileged: Boolean(options.privileged),
        review_interval_days: options.reviewIntervalDays,
        max_token_ttl: options.maxTokenTtl,
        allowed_audiences: options.audience,
        allowed_scopes: options.scope,
        supplier: supplierBlock(options),
      };
      const created = await client.json("POST", "/v1/service-accounts", body);
      return options.json ? printJson(created) : printFields(created);
    });

  sa.command("list")
    .description("list service accounts, with filters")
    .option("--application <id-or-name>", "only this application's accounts")
    .option("--owner <owner>", "only accounts with this technical owner")
    .option("--kind <kind>", "only this kind")
    .option("--status <status>", "active, suspended or decommissioned")
    .option("--expiring-before <time>", "only accounts expiring before this time (RFC 3339 or relative such as 30d)")
    .option("--review-overdue", "only accounts whose access review is overdue")
    .option("--json", "print JSON")
    .action(async (options) => {
      const client = BrokerClient.fromEnvironment();
      const items = await client.listAll("/v1/service-accounts", {
        application_id: options.application ? await resolveApplicationId(client, options.application) : undefined,
        owner: options.owner,
        kind: options.kind,
        status: options.status,
        expiring_before: options.expiringBefore ? parseTimeOption("--expiring-before", options.expiringBefore) : undefined,
        review_overdue: options.reviewOverdue ? "true" : undefined,
      });
      return options.json ? printJson(items) : printTable(items, ACCOUNT_COLUMNS);
    });

  sa.command("show")
    .description("show a service account with its keys and federated subjects")
    .argument("<id>", "service account id (sa_...)")
    .option("--json", "print JSON")
    .action(async (id: string, options) => {
      const client = BrokerClient.fromEnvironment();
      const account = await client.json("GET", `/v1/service-accounts/${encodeURIComponent(id)}`);
      const keys = (await client.json("GET", `/v1/service-accounts/${encodeURIComponent(id)}/keys`)).items;
      const subjects = (await client.json("GET", `/v1/service-accounts/${encodeURIComponent(id)}/federated-subjects`)).items;
      if (options.json) {
        return printJson({ ...account, keys, federated_subjects: subjects });
      }
      printFields({
        ...account,
        keys: keys.map((key: { kid: string; alg: string }) => `${key.kid} (${key.alg})`),
        federated_subjects: subjects.map((subject: { issuer: string; subject: string }) => `${subject.issuer} ${subject.subject}`),
      });
    });

  for (const change of ["suspend", "activate", "decommission"] as const) {
    sa.command(change)
      .description(`${change} a service account`)
      .argument("<id>", "service account id (sa_...)")
      .option("--reason <text>", "why, recorded in the audit log")
      .option("--json", "print JSON")
      .action(async (id: string, options) => {
        const body = options.reason ? { reason: options.reason } : {};
        const account = await BrokerClient.fromEnvironment().json("POST", `/v1/service-accounts/${encodeURIComponent(id)}/${change}`, body);
        return options.json ? printJson(account) : printFields(account);
      });
  }

  sa.command("key")
    .description("manage an account's public keys")
    .command("add")
    .description("register a public JWK for private_key_jwt client assertions")
    .argument("<id>", "service account id (sa_...)")
    .option("--jwk-file <path>", "file holding the public JWK (JSON)")
    .option("--jwk <json>", "the public JWK as inline JSON")
    .option("--json", "print JSON")
    .action(async (id: string, options) => {
      const jwk = await readJwk(options.jwkFile, options.jwk);
      const key = await BrokerClient.fromEnvironment().json("POST", `/v1/service-accounts/${encodeURIComponent(id)}/keys`, { jwk });
      return options.json ? printJson(key) : printFields({ id: key.id, kid: key.kid, alg: key.alg, created_at: key.created_at });
    });
}

async function resolveApplicationId(client: BrokerClient, idOrName: string): Promise<string> {
  if (/^app_[0-9a-f]{24}$/.test(idOrName)) {
    return idOrName;
  }
  const applications = await client.listAll<{ id: string; name: string }>("/v1/applications");
  const match = applications.find((application) => application.name === idOrName);
  if (!match) {
    throw new CliError(`no application named '${idOrName}'; list them with: secrets-broker app list`);
  }
  return match.id;
}

function supplierBlock(options: Record<string, string | undefined>) {
  const fields = [options["supplierName"], options["contractRef"], options["approvedBy"], options["approvedAt"]];
  if (fields.every((field) => field === undefined)) {
    return undefined;
  }
  return {
    name: options["supplierName"],
    contract_ref: options["contractRef"],
    approved_by: options["approvedBy"],
    approved_at: options["approvedAt"] ? parseTimeOption("--approved-at", options["approvedAt"]) : undefined,
    contract_ends_at: options["contractEndsAt"] ? parseTimeOption("--contract-ends-at", options["contractEndsAt"]) : undefined,
  };
}

async function readJwk(file: string | undefined, inline: string | undefined): Promise<unknown> {
  if ((file === undefined) === (inline === undefined)) {
    throw new UsageError("give exactly one of --jwk-file <path> or --jwk <json>");
  }
  const text = file === undefined ? inline! : await readFile(file, "utf8").catch(() => {
    throw new CliError(`cannot read JWK file ${file}`);
  });
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`the JWK ${file ? `in ${file} ` : ""}is not valid JSON`);
  }
}
