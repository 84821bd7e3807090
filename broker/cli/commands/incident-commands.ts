import type { Command } from "commander";
import { BrokerClient } from "../broker-client.js";
import { CliError, UsageError } from "../cli-error.js";
import { parseTimeOption } from "../options.js";
import { printJson, printTable } from "../output.js";
import { readValueFile } from "../value-file.js";
import { FINGERPRINT_PATTERN } from "../../incident/incident-schemas.js";

const CREDENTIAL_COLUMNS = ["lease_id", "kind", "service_account_name", "secret_name", "secret_version", "source_address", "issued_at", "ended_at", "end_reason", "renew_count"];
const ACTION_COLUMNS = ["at", "action", "target", "actor", "detail"];

/** Adds `incident`: the credentials exposed by a leaked value or held by an account in a window, and the compromise rotations. */
export function addIncidentCommands(program: Command): void {
  program
    .command("incident")
    .description("report the credentials live in an incident window, their holders and the steps taken since")
    .option("--fingerprint <fingerprint>", "fingerprint of the leaked value (hmac-sha256:...), as POST /v1/fingerprints returns it")
    .option("--value-file <file>", "file holding the leaked value, fingerprinted by the broker; needs the operator role, and the value is never stored")
    .option("--service-account <id>", "the service account whose credentials the incident concerns (sa_...)")
    .option("--from <time>", "start of the window (RFC 3339 or relative such as -24h); required with --service-account alone")
    .option("--to <time>", "end of the window; now by default")
    .option("--rotate", "start a compromise rotation of every affected secret that has not had one since the window began")
    .option("--json", "print the report as JSON")
    .action(async (options) => {
      checkIncidentOptions(options);
      const client = BrokerClient.fromEnvironment();
      const fingerprint = options.valueFile ? await fingerprintOf(client, options.valueFile) : options.fingerprint;
      const report = await client.json("GET", `/v1/incident-report?${reportQuery(fingerprint, options)}`);
      const rotations = options.rotate ? await rotateCompromised(client, report) : [];
      if (options.json) {
        return printJson(options.rotate ? { ...report, rotations_started: rotations } : report);
      }
      printReport(report, rotations);
    });
}

/** Rejects option combinations the report cannot take, before any request. */
function checkIncidentOptions(options: { fingerprint?: string; valueFile?: string; serviceAccount?: string; from?: string }): void {
  if (options.fingerprint && options.valueFile) {
    throw new UsageError("give --fingerprint or --value-file, not both");
  }
  const byValue = Boolean(options.fingerprint || options.valueFile);
  if (!byValue && !options.serviceAccount) {
    throw new UsageError("give --fingerprint or --value-file (a leaked value), --service-account with --from (a suspect account), or both");
  }
  if (!byValue && !options.from) {
    throw new UsageError("--service-account needs --from: the start of the incident window, such as -24h");
  }
  if (options.fingerprint && !FINGERPRINT_PATTERN.test(options.fingerprint)) {
    throw new UsageError("--fingerprint must be hmac-sha256: followed by 64 hex characters, as POST /v1/fingerprints returns it; give --value-file to fingerprint a value");
  }
}

async function fingerprintOf(client: BrokerClient, file: string): Promise<string> {
  const value = await readValueFile(file, "Put the leaked value in it.");
  try {
    const lookup = await client.json("POST", "/v1/fingerprints", { value });
    return lookup.fingerprint;
  } catch (error) {
    if (error instanceof CliError && error.problem?.["status"] === 403) {
      throw new CliError(`${error.message}; an auditor passes --fingerprint with a fingerprint that an operator computed`);
    }
    throw error;
  }
}

function reportQuery(fingerprint: string | undefined, options: { serviceAccount?: string; from?: string; to?: string }): string {
  const query = new URLSearchParams();
  if (fingerprint) query.set("fingerprint", fingerprint);
  if (options.serviceAccount) query.set("service_account_id", options.serviceAccount);
  if (options.from) query.set("from", parseTimeOption("--from", options.from));
  if (options.to) query.set("to", parseTimeOption("--to", options.to));
  return query.toString();
}

/** Starts a compromise rotation of each secret the report lists as still to rotate. */
async function rotateCompromised(client: BrokerClient, report: { secrets_to_rotate: { id: string }[] }) {
  const started: { secret_id: string; rotation_id: string }[] = [];
  for (const secret of report.secrets_to_rotate) {
    const rotation = await client.json("POST", `/v1/secrets/${encodeURIComponent(secret.id)}/rotate`, { mode: "compromise", reason: "incident response" });
    started.push({ secret_id: secret.id, rotation_id: rotation.id });
  }
  return started;
}

function printReport(report: any, rotations: { secret_id: string; rotation_id: string }[]): void {
  const article23 = report.nis2_article_23;
  const lines = [
    `window: ${report.query.from ?? "the first lease"} to ${report.query.to}`,
    `affected systems: ${article23.affected_systems.join(", ") || "none"}`,
    `exposure: first issued ${article23.exposure_window.first_issued_at ?? "-"}, last live ${article23.exposure_window.last_live_at ?? "-"}, ${article23.credentials_live_now} still live`,
    `service accounts: ${report.affected.service_accounts.map((account: any) => `${account.name} (${account.id}, owner ${account.technical_owner})`).join("; ") || "none"}`,
    `secrets: ${report.affected.secrets.map((secret: any) => `${secret.name ?? secret.id} versions ${secret.versions.join(",") || "-"}`).join("; ") || "none"}`,
    `indicators: ${article23.indicators_of_compromise.join("; ") || "none"}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n\ncredentials (${report.credentials.length}${report.truncated ? ", truncated" : ""}):\n`);
  printTable(report.credentials, CREDENTIAL_COLUMNS);
  process.stdout.write("\nsteps taken since:\n");
  printTable(report.actions_since, ACTION_COLUMNS);
  for (const rotation of rotations) {
    process.stdout.write(`started compromise rotation ${rotation.rotation_id} of ${rotation.secret_id}\n`);
  }
  const steps = rotations.length > 0 ? [] : report.next_steps;
  process.stdout.write(steps.length > 0 ? `\nnext steps:\n${steps.map((step: string) => `  ${step}`).join("\n")}\n` : "");
  process.stdout.write(`\nfor the NIS2 Article 23 notification, also state: ${article23.to_be_completed_by_the_operator.join("; ")}\n`);
}
