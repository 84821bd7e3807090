#!/usr/bin/env node
import { CommanderError } from "commander";
import { ConfigError } from "../config/config.js";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "./cli-error.js";
import { buildProgram } from "./program.js";

/** Runs the CLI and sets the exit code: 0 success, 1 failure, 2 usage error. */
async function main(argv: string[]): Promise<void> {
  const wantsJson = argv.includes("--json");
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    // Exit at once: a command that failed half way may leave a database handle or a
    // timer open that would otherwise keep the process alive.
    process.exit(reportError(error, wantsJson));
  }
}

function reportError(error: unknown, json: boolean): number {
  if (error instanceof CommanderError) {
    // Commander has already printed help or the usage message.
    return error.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  if (error instanceof CliError || error instanceof ConfigError) {
    const exitCode = error instanceof CliError ? error.exitCode : EXIT_FAILURE;
    if (json) {
      const problem = error instanceof CliError && error.problem ? error.problem : { detail: error.message };
      process.stderr.write(`${JSON.stringify({ error: error.message, problem })}\n`);
    } else {
      process.stderr.write(`error: ${error.message}\n`);
    }
    return exitCode;
  }
  process.stderr.write(`error: ${(error as Error)?.message ?? String(error)}\n`);
  return EXIT_FAILURE;
}

// A reader that closes the pipe early (`| head`) is not an error of the command.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") {
    process.exit(0);
  }
  throw error;
});

await main(process.argv);
