import type { Command } from "commander";
import { addDiscoverAwsCommand } from "./discover-aws-command.js";
import { addDiscoverVaultCommand } from "./discover-vault-command.js";

/** Adds `discover aws` and `discover vault`, which find secrets in an upstream and register them in the catalogue. */
export function addDiscoverCommand(program: Command): void {
  const discover = program.command("discover").description("find secrets in an upstream and register them in the catalogue");
  addDiscoverAwsCommand(discover);
  addDiscoverVaultCommand(discover);
}
