import { Command } from "commander";
import { addDiscoverCommand } from "./commands/discover-command.js";
import { addGovernanceCommands } from "./commands/governance-commands.js";
import { addImportCommand } from "./commands/import-command.js";
import { addEvidenceCommands } from "./commands/evidence-commands.js";
import { addIncidentCommands } from "./commands/incident-commands.js";
import { addLeaseCommands } from "./commands/lease-commands.js";
import { addLocalCommands } from "./commands/local-commands.js";
import { addMasterKeyCommands } from "./commands/master-key-commands.js";
import { addOperatorCommands } from "./commands/operator-commands.js";
import { addRegisterCommands } from "./commands/register-commands.js";
import { addRotationCommands } from "./commands/rotation-commands.js";
import { addSecretCommands } from "./commands/secret-commands.js";
import { addSigningKeyCommands } from "./commands/signing-key-commands.js";

export function buildProgram(): Command {
  const program = new Command("secrets-broker")
    .description(
      "Secrets lifecycle broker for machine identities.\n" +
        "serve, init and migrate open the database; every other command is an HTTP client of a running broker\n" +
        "(BROKER_ADDR, default http://127.0.0.1:8080, and BROKER_TOKEN, an operator token).",
    )
    .version("0.1.0")
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)");

  addLocalCommands(program);
  addRegisterCommands(program);
  addOperatorCommands(program);
  addImportCommand(program);
  addSigningKeyCommands(program);
  addMasterKeyCommands(program);
  addLeaseCommands(program);
  addSecretCommands(program);
  addRotationCommands(program);
  addGovernanceCommands(program);
  addIncidentCommands(program);
  addEvidenceCommands(program);
  addDiscoverCommand(program);
  return program;
}
