import type { Command } from "commander";
import { loadConfig } from "../../config/config.js";
import { createLogger } from "../../logging/logger.js";
import { closeRuntime, openRuntime } from "../../server/bootstrap.js";
import { serveBroker } from "../../server/serve.js";
import { initializeBroker } from "../../setup/initialize.js";
import { CliError } from "../cli-error.js";
import { printJson } from "../output.js";

/** Commands that open the database themselves: serve, init and migrate. */
export function addLocalCommands(program: Command): void {
  program
    .command("serve")
    .description("start the broker: migrate the database, initialize it on first start, serve HTTP")
    .action(async () => {
      await serveBroker(loadConfig());
    });

  program
    .command("init")
    .description("initialize an empty database: signing key and first admin token, printed once")
    .option("--json", 'print {"admin_token": "..."} and nothing else')
    .action(async (options: { json?: boolean }) => {
      const runtime = await openRuntime(loadConfig(), { log: cliLogger() });
      try {
        const context = { actor: "cli", role: null, requestId: null, sourceAddress: null };
        const { adminToken } = await initializeBroker(runtime.deps, runtime.deps.masterKeys, context, runtime.deps.config.signingAlgorithm).catch((error: unknown) => {
          throw new CliError((error as Error).message);
        });
        if (options.json) {
          process.stdout.write(`${JSON.stringify({ admin_token: adminToken })}\n`);
        } else {
          process.stdout.write(`Broker initialized. First admin token (shown once, store it now):\n${adminToken}\n`);
        }
      } finally {
        await closeRuntime(runtime);
      }
    });

  program
    .command("migrate")
    .description("apply database migrations and exit")
    .option("--json", "print the result as JSON")
    .action(async (options: { json?: boolean }) => {
      const runtime = await openRuntime(loadConfig(), { log: cliLogger() });
      await runtime.database.close();
      const result = { migrated: true, database: runtime.database.kind, migrations: runtime.deps.expectedMigrations };
      if (options.json) {
        printJson(result);
      } else {
        process.stdout.write(`${result.migrations} migrations applied on ${result.database}\n`);
      }
    });
}

/** Local commands log warnings and errors to standard error, keeping standard output for results. */
function cliLogger() {
  return createLogger({ level: process.env["LOG_LEVEL"] ?? "warn", destination: process.stderr });
}
