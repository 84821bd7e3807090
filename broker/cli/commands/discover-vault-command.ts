import { readFile } from "node:fs/promises";
import { type Command, Option } from "commander";
import { discoverVaultEstate } from "../../../adapters/vault/discovery.js";
import { InvalidAdapterSettings } from "../../../adapters/errors.js";
import { createVaultClient } from "../../../adapters/vault/vault-client.js";
import { toAdapterError, type VaultFixNames } from "../../../adapters/vault/vault-errors.js";
import { parseVaultSettings, type VaultStaticSettings } from "../../../adapters/vault/vault-settings.js";
import { BrokerClient } from "../broker-client.js";
import { CliError, UsageError } from "../cli-error.js";
import { printJson, printTable } from "../output.js";
import { type PlannedSecret, planSecrets } from "../vault-discovery-plan.js";

const PLAN_COLUMNS = ["name", "kind", "vault_path", "generate_field", "result"];
/** The broker's rule for a field name of a secret's value. */
const FIELD_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
/** Flags that set each adapter setting, to name in usage errors. */
const SETTING_FLAGS: Record<string, string> = {
  "connection.address": "--address (or VAULT_ADDR)",
  "connection.namespace": "--namespace (or VAULT_NAMESPACE)",
  "connection.ca": "--ca-file (or VAULT_CACERT)",
  "auth.method": "--auth",
  "auth.role_id": "--role-id",
  "auth.secret_id_secret": "--secret-id-secret",
  "auth.token_secret": "--token-secret",
  auth: "--auth",
  "kv.mount": "--mount",
};
/** Names of what the operator sets to fix a failed listing: the CLI's flags and VAULT_TOKEN, not the settings they fill. */
const LISTING_FIXES: VaultFixNames = {
  address: "--address (or VAULT_ADDR)",
  ca: "--ca-file (or VAULT_CACERT)",
  token: "the token in VAULT_TOKEN",
  mount: "--mount",
};

/** Adds `discover vault`: lists KV v2 paths and database roles in Vault and registers them in the broker. */
export function addDiscoverVaultCommand(discover: Command): void {
  discover
    .command("vault")
    .description(
      "list KV v2 paths and database roles in Vault and register them as secrets; a dry run unless --apply.\n" +
        "The CLI reads Vault with the token in VAULT_TOKEN; the broker reads it later with --auth.",
    )
    .option("--mount <mount>", "KV version 2 mount to list", "secret")
    .option("--prefix <folder>", "folder inside the KV mount to list recursively, such as prod/", "")
    .option("--database-mount <mount>", "database secrets engine whose roles are listed", "database")
    .option("--no-database", "do not list database roles")
    .option("--address <url>", "Vault address (default: VAULT_ADDR)")
    .option("--namespace <namespace>", "Vault Enterprise namespace (default: VAULT_NAMESPACE)")
    .option("--ca-file <file>", "PEM CA bundle that verifies Vault's certificate (default: VAULT_CACERT)")
    .requiredOption("--owner <owner>", "team or person answerable for the registered secrets")
    .option("--name-prefix <prefix>", "prefix of the broker secret names", "vault/")
    .addOption(new Option("--auth <method>", "how the broker authenticates to Vault for these secrets").choices(["approle", "token"]).makeOptionMandatory())
    .option("--role-id <id>", "AppRole role_id of the broker (with --auth approle)")
    .option("--secret-id-secret <name>", "local secret that stores the AppRole secret_id (with --auth approle)")
    .option("--token-secret <name>", "local secret that stores the broker's Vault token (with --auth token)")
    .option("--generate-field <field>", "field of each KV secret that rotations replace with a generated 32-character value, such as password")
    .option("--apply", "register the secrets; without it, only print what would be registered")
    .option("--json", "print JSON")
    .action(async (options) => {
      const settings = await brokerSettings(options);
      if (options.generateField !== undefined && !FIELD_NAME_PATTERN.test(options.generateField)) {
        throw new UsageError("--generate-field: must be a field name: a letter or _, then up to 63 letters, digits, _, . or -");
      }
      const token = process.env["VAULT_TOKEN"];
      if (!token) {
        throw new UsageError("VAULT_TOKEN is not set: export a Vault token that may list the KV metadata and the database roles");
      }

      const found = await discoverWithToken(settings, token, options);
      const plan = planSecrets(found, {
        namePrefix: options.namePrefix,
        kvMount: settings.kv!.mount,
        databaseMount: options.database ? options.databaseMount : undefined,
        connection: settings.connection,
        auth: settings.auth,
        generateField: options.generateField,
      });
      const results = options.apply ? await register(plan.secrets, options.owner) : await dryRun(plan.secrets);
      report(plan.secrets, results, plan.warnings, Boolean(options.apply), Boolean(options.json));
      if (results.some((result) => result.startsWith("failed"))) {
        throw new CliError("some secrets could not be registered; see the result column");
      }
    });
}

/** Validates the connection and auth flags as the adapter will, with the flag names in the errors. */
async function brokerSettings(options: Record<string, string | undefined>): Promise<VaultStaticSettings> {
  const caFile = options["caFile"] ?? process.env["VAULT_CACERT"];
  const ca = caFile === undefined ? undefined : await readFile(caFile, "utf8").catch(() => {
    throw new UsageError(`cannot read the CA bundle ${caFile}`);
  });
  const namespace = options["namespace"] ?? process.env["VAULT_NAMESPACE"];
  const auth =
    options["auth"] === "token"
      ? { method: "token", token_secret: options["tokenSecret"] }
      : { method: "approle", role_id: options["roleId"], secret_id_secret: options["secretIdSecret"] };
  try {
    return parseVaultSettings("static", {
      connection: { address: options["address"] ?? process.env["VAULT_ADDR"], ...(namespace ? { namespace } : {}), ...(ca === undefined ? {} : { ca }) },
      auth,
      kv: { mount: options["mount"], path: "discovery" },
    });
  } catch (error) {
    if (error instanceof InvalidAdapterSettings) {
      const lines = error.invalidSettings.map((entry) => `${SETTING_FLAGS[entry.name] ?? entry.name}: ${entry.reason}`);
      throw new UsageError(`invalid options; nothing was listed\n${lines.join("\n")}`);
    }
    throw error;
  }
}

async function discoverWithToken(settings: VaultStaticSettings, token: string, options: Record<string, unknown>) {
  const client = createVaultClient(settings.connection);
  client.token = token;
  const request = { kvMount: settings.kv!.mount, prefix: String(options["prefix"] ?? ""), databaseMount: options["database"] ? String(options["databaseMount"]) : undefined };
  try {
    return await discoverVaultEstate(client, request);
  } catch (error) {
    const mapped = toAdapterError(error, { location: `${settings.connection.address} ${request.kvMount}/metadata/${request.prefix}`, action: "list KV paths", fixes: LISTING_FIXES });
    throw new CliError(mapped instanceof Error ? mapped.message : String(mapped));
  }
}

/** Registers each secret through the broker; an existing name is reported, not overwritten. */
async function register(secrets: PlannedSecret[], owner: string): Promise<string[]> {
  const client = BrokerClient.fromEnvironment();
  const results: string[] = [];
  for (const secret of secrets) {
    try {
      const created = await client.json("POST", "/v1/secrets", { name: secret.name, adapter: "vault", kind: secret.kind, owner, settings: secret.settings, generate: secret.generate });
      results.push(`created ${created.id}`);
    } catch (error) {
      if (!(error instanceof CliError)) throw error;
      results.push(error.problem?.["code"] === "conflict" ? "exists" : `failed: ${registrationFailure(error)}`);
    }
  }
  return results;
}

/**
 * Returns the broker's refusal of one secret with the settings it names replaced by the
 * flags that set them: each invalid setting, or the dotted setting names in its message.
 */
function registrationFailure(error: CliError): string {
  const invalid = error.problem?.["invalid_params"];
  if (!Array.isArray(invalid) || invalid.length === 0) {
    return Object.entries(SETTING_FLAGS)
      .filter(([setting]) => setting.includes("."))
      .reduce((message, [setting, flag]) => message.replaceAll(setting, flag), error.message);
  }
  return invalid
    .map((param: { name: string; reason: string }) => {
      const setting = param.name.replace(/^settings\./, "");
      return `${SETTING_FLAGS[setting] ?? param.name}: ${param.reason}`;
    })
    .join("; ");
}

/** Marks the names the broker already has as "exists", as --apply would report them. */
async function dryRun(secrets: PlannedSecret[]): Promise<string[]> {
  const existing = new Set((await BrokerClient.fromEnvironment().listAll<{ name: string }>("/v1/secrets")).map((secret) => secret.name));
  return secrets.map((secret) => (existing.has(secret.name) ? "exists" : "would create"));
}

function report(secrets: PlannedSecret[], results: string[], warnings: string[], applied: boolean, json: boolean): void {
  const rows = secrets.map((secret, index) => ({
    name: secret.name,
    kind: secret.kind,
    vault_path: secret.vault_path,
    generate_field: secret.generate?.field ?? null,
    result: results[index],
  }));
  if (json) {
    printJson({ applied, secrets: rows, warnings });
    return;
  }
  for (const warning of warnings) {
    process.stderr.write(`warning: ${warning}\n`);
  }
  printTable(rows, PLAN_COLUMNS);
  if (!applied) {
    const creatable = rows.filter((row) => row.result === "would create").length;
    process.stdout.write(`dry run: ${creatable} secret(s) would be registered; run again with --apply to register them\n`);
  }
}
