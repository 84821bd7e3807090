import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { type EstateFileProblem, EstateFile } from "../../estate/estate-file.js";
import { BrokerClient } from "../broker-client.js";
import { CliError } from "../cli-error.js";
import { printJson, printTable } from "../output.js";

export function addImportCommand(program: Command): void {
  program
    .command("import")
    .description("import applications, trusted issuers, service accounts and grants from a YAML estate file, all or nothing")
    .argument("<file>", "estate file (YAML or JSON)")
    .option("--dry-run", "check every entry on the broker, then roll back")
    .option("--json", "print JSON")
    .action(async (file: string, options) => {
      const text = await readFile(file, "utf8").catch(() => {
        throw new CliError(`cannot read estate file ${file}`);
      });
      const parsed = EstateFile.parse(text);
      if ("problems" in parsed) {
        throw estateError(file, parsed.problems);
      }
      const checked = parsed.validate();
      if ("problems" in checked) {
        throw estateError(file, checked.problems);
      }

      const client = BrokerClient.fromEnvironment();
      const result = await client
        .json("POST", `/v1/import?dry_run=${options.dryRun ? "true" : "false"}`, checked.estate)
        .catch((error: unknown) => {
          throw locateBrokerError(file, parsed, error);
        });
      if (options.json) {
        return printJson(result);
      }
      const verb = result.dry_run ? "would import" : "imported";
      process.stdout.write(
        `${verb} ${result.applications.length} applications, ${result.trusted_issuers.length} trusted issuers, ${result.service_accounts.length} service accounts, ${result.grants.length} grants\n`,
      );
      printTable(result.service_accounts, ["id", "name"]);
    });
}

function estateError(file: string, problems: EstateFileProblem[]): CliError {
  const lines = problems.map((problem) => {
    const where = problem.line ? `${file}:${problem.line}:${problem.column ?? 1}` : file;
    return `${where}: ${problem.field}: ${problem.reason}`;
  });
  return new CliError(`estate file is invalid; nothing was imported\n${lines.join("\n")}`);
}

/** Points a broker refusal back at the line of the entry it names. */
function locateBrokerError(file: string, estate: EstateFile, error: unknown): unknown {
  if (!(error instanceof CliError) || !error.problem) {
    return error;
  }
  const invalid = error.problem["invalid_params"] as { name: string; reason: string }[] | undefined;
  if (invalid && invalid.length > 0) {
    return estateError(file, estate.locate(invalid));
  }
  const detail = String(error.problem["detail"] ?? error.message);
  const entry = /^([a-z_]+\[\d+\](?:\.[a-z_]+\[\d+\])?): (.*)$/s.exec(detail);
  if (entry) {
    return estateError(file, [{ field: entry[1]!, reason: entry[2]!, ...estate.position(entry[1]!) }]);
  }
  return error;
}
