import type { Command } from "commander";
import { listAwsSecrets } from "../../../adapters/aws-secrets-manager/list-secrets.js";
import { type DiscoveredSecret, namePrefixProblem, planDiscovery, registrationBody } from "../aws-discovery.js";
import { BrokerClient } from "../broker-client.js";
import { CliError, UsageError } from "../cli-error.js";
import { printJson, printTable } from "../output.js";

const DISCOVERY_COLUMNS = ["aws_name", "name", "owner", "application", "rotated_by", "action", "reason"];
/** How long listing the AWS secrets may take, in milliseconds. */
const LIST_TIMEOUT_MS = 60_000;

/** Adds `discover aws`: lists AWS Secrets Manager secrets and registers them in the broker. */
export function addDiscoverAwsCommand(discover: Command): void {
  discover
    .command("aws")
    .description("list AWS Secrets Manager secrets (ListSecrets) and register them; a dry run unless --apply is given")
    .option("--prefix <prefix>", "only AWS secrets whose name starts with this, such as prod/")
    .option("--region <region>", "AWS region; the SDK's default (AWS_REGION, shared config) otherwise")
    .option("--endpoint <url>", "endpoint URL, also stored in each secret's settings; AWS_ENDPOINT_URL_SECRETS_MANAGER otherwise")
    .option("--name-prefix <prefix>", "prefix of the broker secret names", "aws/")
    .option("--owner-tag <key>", "AWS tag that gives the owner", "owner")
    .option("--application-tag <key>", "AWS tag that gives the application", "application")
    .option("--default-owner <owner>", "owner of secrets without the owner tag; without it they are skipped")
    .option("--apply", "register the secrets; without it nothing is written")
    .option("--json", "print JSON")
    .action(async (options) => {
      const prefixProblem = namePrefixProblem(options.namePrefix);
      if (prefixProblem !== null) {
        throw new UsageError(`--name-prefix '${options.namePrefix}' is invalid: a broker secret name made from it ${prefixProblem}; give a prefix such as aws/`);
      }
      const client = BrokerClient.fromEnvironment();
      const { registered, names } = await brokerSecrets(client);
      const entries = await listAwsSecrets({ prefix: options.prefix, region: options.region, endpoint: options.endpoint, signal: AbortSignal.timeout(LIST_TIMEOUT_MS) }).catch(
        (error: Error) => {
          throw new CliError(`listing AWS Secrets Manager secrets failed (${error.name}: ${error.message}); check the AWS credentials, region and endpoint`);
        },
      );
      const plan = planDiscovery(entries, registered, {
        namePrefix: options.namePrefix,
        ownerTag: options.ownerTag,
        applicationTag: options.applicationTag,
        defaultOwner: options.defaultOwner,
        takenNames: names,
      });
      const results = options.apply ? await register(client, plan, options.endpoint) : plan;

      if (options.json) {
        printJson({ dry_run: !options.apply, secrets: results });
      } else {
        process.stdout.write(options.apply ? "outcome of each secret:\n" : "dry run; run with --apply to register:\n");
        printTable(results as unknown as Record<string, unknown>[], DISCOVERY_COLUMNS);
      }
      if (results.some((result) => result.action === "failed")) {
        throw new CliError("some secrets could not be registered; see the reason column");
      }
    });
}

/** A discovered secret after --apply: registered now with its broker id, or failed with the broker's reason. */
type AppliedSecret = Omit<DiscoveredSecret, "action"> & { action: DiscoveredSecret["action"] | "created" | "failed"; id?: string };

async function register(client: BrokerClient, plan: DiscoveredSecret[], endpoint: string | undefined): Promise<AppliedSecret[]> {
  const results: AppliedSecret[] = [];
  for (const secret of plan) {
    if (secret.action !== "register") {
      results.push(secret);
      continue;
    }
    try {
      const created = await client.json("POST", "/v1/secrets", registrationBody(secret, endpoint));
      results.push({ ...secret, action: "created", id: created.id, reason: null });
    } catch (error) {
      results.push({ ...secret, action: "failed", reason: (error as Error).message });
    }
  }
  return results;
}

/** Returns the secret_id of every live broker secret of the AWS adapter, and every broker secret name in use. */
async function brokerSecrets(client: BrokerClient): Promise<{ registered: Set<string>; names: Set<string> }> {
  const secrets = await client.listAll<{ name: string; adapter: string; settings: { secret_id?: string } }>("/v1/secrets");
  const aws = secrets.filter((secret) => secret.adapter === "aws-secrets-manager");
  return {
    registered: new Set(aws.map((secret) => secret.settings.secret_id).filter((id): id is string => typeof id === "string")),
    names: new Set(secrets.map((secret) => secret.name)),
  };
}
