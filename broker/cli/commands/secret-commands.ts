import { readFile } from "node:fs/promises";
import { type Command, Option } from "commander";
import { BrokerClient } from "../broker-client.js";
import { UsageError } from "../cli-error.js";
import { collect, parseIntegerOption, parseTimeOption } from "../options.js";
import { printFields, printJson, printTable } from "../output.js";
import { resolveSecretId } from "../resolve-secret.js";
import { readValueFile } from "../value-file.js";

const SECRET_KINDS = ["static", "dynamic"];
const GRANT_STATUSES = ["active", "not_yet_valid", "expired", "revoked"];
const SECRET_COLUMNS = ["id", "name", "adapter", "kind", "owner", "current_version", "default_ttl", "max_ttl"];
const VERSION_COLUMNS = ["version", "stage", "fingerprint", "created_at", "promoted_at"];
const GRANT_COLUMNS = ["id", "service_account_id", "secret", "audience", "scopes", "max_ttl", "not_after", "status"];

export function addSecretCommands(program: Command): void {
  addSecretSubcommands(program.command("secret").description("manage the secrets catalogue (values are never shown)"));
  addGrantSubcommands(program.command("grant").description("allow service accounts to obtain secrets or audiences"));
}

function addSecretSubcommands(secret: Command): void {
  secret
    .command("create")
    .description("add a secret; a local static secret gets a generated value unless --value-file is given")
    .requiredOption("--name <name>", "path-like name, such as db/orders-readonly")
    .requiredOption("--owner <owner>", "team or person answerable for the secret")
    .option("--adapter <adapter>", "local, postgres, vault or aws-secrets-manager", "local")
    .addOption(new Option("--kind <kind>", "static or dynamic").choices(SECRET_KINDS).default("static"))
    .option("--settings-file <file>", "JSON file with the adapter settings")
    .option("--value-file <file>", "file holding the first value (JSON object of string fields, or plain text)")
    .option("--length <n>", "length of a generated value, in characters (the broker accepts 16 to 256)", (value) => parseIntegerOption("--length", value))
    .option("--default-ttl <seconds>", "lease TTL when a workload asks for none", (value) => parseIntegerOption("--default-ttl", value))
    .option("--max-ttl <seconds>", "longest lease TTL", (value) => parseIntegerOption("--max-ttl", value))
    .option("--json", "print JSON")
    .action(async (options) => {
      if (options.valueFile && options.length !== undefined) {
        throw new UsageError("--length sets the length of a generated value, so it cannot be combined with --value-file. Give one of them.");
      }
      const body: Record<string, unknown> = {
        name: options.name,
        owner: options.owner,
        adapter: options.adapter,
        kind: options.kind,
        default_ttl: options.defaultTtl,
        max_ttl: options.maxTtl,
        settings: options.settingsFile ? await readJsonFile("--settings-file", options.settingsFile) : undefined,
      };
      if (options.valueFile) {
        body["value"] = await readValueFile(options.valueFile);
      } else if (options.length !== undefined) {
        body["generate"] = { length: options.length };
      } else if (options.adapter === "local" && options.kind === "static") {
        body["generate"] = {};
      }
      const created = await BrokerClient.fromEnvironment().json("POST", "/v1/secrets", body);
      return options.json ? printJson(created) : printFields(created);
    });

  secret
    .command("list")
    .description("list secrets")
    .option("--adapter <adapter>", "only this adapter")
    .option("--owner <owner>", "only this owner")
    .option("--prefix <prefix>", "only names starting with this")
    .option("--json", "print JSON")
    .action(async (options) => {
      const items = await BrokerClient.fromEnvironment().listAll("/v1/secrets", { adapter: options.adapter, owner: options.owner, name_prefix: options.prefix });
      return options.json ? printJson(items) : printTable(items, SECRET_COLUMNS);
    });

  secret
    .command("versions")
    .description("list a secret's versions with stages and fingerprints")
    .argument("<secret>", "secret id (sec_...) or name")
    .option("--json", "print JSON")
    .action(async (secret: string, options) => {
      const client = BrokerClient.fromEnvironment();
      const id = await resolveSecretId(client, secret);
      const { items } = await client.json("GET", `/v1/secrets/${encodeURIComponent(id)}/versions`);
      return options.json ? printJson(items) : printTable(items, VERSION_COLUMNS);
    });

  secret
    .command("rotation-schedule")
    .description("show the broker's rotation policy beside the upstream's own rotation schedule (AWS RotationRules)")
    .argument("<secret>", "secret id (sec_...) or name")
    .option("--refresh", "first read the upstream's rotation again and set or clear the secret's external_rotation mark")
    .option("--json", "print JSON")
    .action(async (secret: string, options) => {
      const client = BrokerClient.fromEnvironment();
      const id = await resolveSecretId(client, secret);
      if (options.refresh) {
        await client.json("POST", `/v1/secrets/${encodeURIComponent(id)}/external-rotation/refresh`);
      }
      const schedule = await client.json("GET", `/v1/secrets/${encodeURIComponent(id)}/rotation-schedule`);
      return options.json ? printJson(schedule) : printFields(scheduleFields(schedule));
    });

  addAuditedSecretCommand(secret, "resync", "record the version Vault holds now as the secret's current version, after a write outside the broker", "POST", "/resync");
  addAuditedSecretCommand(secret, "delete", "delete a secret: revokes its grants and live leases", "DELETE", "");
}

/** Adds a command that sends `{"reason": ...}` to `/v1/secrets/{id}<suffix>` for one secret and prints the response. */
function addAuditedSecretCommand(secret: Command, name: string, description: string, method: string, suffix: string): void {
  secret
    .command(name)
    .description(description)
    .argument("<secret>", "secret id (sec_...) or name")
    .option("--reason <text>", "why, for the audit log")
    .option("--json", "print JSON")
    .action(async (nameOrId: string, options) => {
      const client = BrokerClient.fromEnvironment();
      const id = await resolveSecretId(client, nameOrId);
      const response = await client.json(method, `/v1/secrets/${encodeURIComponent(id)}${suffix}`, { reason: options.reason });
      return options.json ? printJson(response) : printFields(response);
    });
}

function addGrantSubcommands(grant: Command): void {
  grant
    .command("create")
    .description("allow a service account to obtain a secret (--secret) or a token for an audience (--audience)")
    .requiredOption("--service-account <id>", "service account id (sa_...)")
    .option("--secret <name>", "secret name")
    .option("--audience <audience>", "access-token audience")
    .option("--scope <scope>", "scope the workload's token must carry (repeatable)", collect)
    .option("--max-ttl <seconds>", "cap on credential TTLs under this grant", (value) => parseIntegerOption("--max-ttl", value))
    .option("--not-before <time>", "start: RFC 3339 or relative such as 1d")
    .option("--not-after <time>", "end: RFC 3339 or relative such as 90d (required for supplier accounts)")
    .option("--approved-by <person>", "who approved the access")
    .option("--justification <text>", "ticket or contract reference")
    .option("--json", "print JSON")
    .action(async (options) => {
      if (Boolean(options.secret) === Boolean(options.audience)) {
        throw new UsageError("give exactly one of --secret or --audience");
      }
      const created = await BrokerClient.fromEnvironment().json("POST", "/v1/grants", {
        service_account_id: options.serviceAccount,
        secret: options.secret,
        audience: options.audience,
        scopes: options.scope,
        max_ttl: options.maxTtl,
        not_before: options.notBefore ? parseTimeOption("--not-before", options.notBefore) : undefined,
        not_after: options.notAfter ? parseTimeOption("--not-after", options.notAfter) : undefined,
        approved_by: options.approvedBy,
        justification: options.justification,
      });
      return options.json ? printJson(created) : printFields(created);
    });

  grant
    .command("list")
    .description("list grants")
    .option("--service-account <id>", "only this service account's grants")
    .option("--secret-id <id>", "only grants for this secret (sec_...)")
    .addOption(new Option("--status <status>", "only grants with this status").choices(GRANT_STATUSES))
    .option("--json", "print JSON")
    .action(async (options) => {
      const items = await BrokerClient.fromEnvironment().listAll("/v1/grants", {
        service_account_id: options.serviceAccount,
        secret_id: options.secretId,
        status: options.status,
      });
      return options.json ? printJson(items) : printTable(items, GRANT_COLUMNS);
    });

  grant
    .command("revoke")
    .description("revoke a grant and every live lease issued under it")
    .argument("<id>", "grant id (grt_...)")
    .option("--reason <text>", "why, for the audit log")
    .option("--json", "print JSON")
    .action(async (id: string, options) => {
      const revoked = await BrokerClient.fromEnvironment().json("POST", `/v1/grants/${encodeURIComponent(id)}/revoke`, { reason: options.reason });
      return options.json ? printJson(revoked) : printFields(revoked);
    });
}

/** Flattens a rotation schedule into `broker_*`, `upstream_*` and `external_rotation` fields for printing. */
function scheduleFields(schedule: { broker: Record<string, unknown>; upstream: Record<string, unknown> | null; external_rotation: unknown }): Record<string, unknown> {
  const prefixed = (prefix: string, fields: Record<string, unknown>) => Object.fromEntries(Object.entries(fields).map(([key, value]) => [`${prefix}_${key}`, value]));
  return { ...prefixed("broker", schedule.broker), ...(schedule.upstream === null ? { upstream: null } : prefixed("upstream", schedule.upstream)), external_rotation: schedule.external_rotation };
}

async function readJsonFile(option: string, file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new UsageError(`${option} ${file} must be a readable JSON file (${(error as Error).message})`);
  }
}
