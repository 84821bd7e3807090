import type { Command } from "commander";
import { MAX_KEY_PUBLISH_DELAY_SECONDS } from "../../tokens/key-rotation.js";
import { BrokerClient } from "../broker-client.js";
import { UsageError } from "../cli-error.js";
import { parseIntegerOption } from "../options.js";
import { printFields, printJson, printTable } from "../output.js";

const KEY_COLUMNS = ["kid", "alg", "state", "created_at", "activates_at", "published_until"];

export function addSigningKeyCommands(program: Command): void {
  const keys = program.command("keys").description("list and rotate the broker's token signing keys");

  keys
    .command("rotate")
    .description("add a signing key (admin role): published in the JWKS at once, signing after the publish delay")
    .option(
      "--publish-delay <seconds>",
      `seconds the new key is published before it signs, 0 to ${MAX_KEY_PUBLISH_DELAY_SECONDS} (default: the broker's BROKER_KEY_PUBLISH_DELAY)`,
      parsePublishDelay,
    )
    .option("--json", "print JSON")
    .action(async (options: { publishDelay?: number; json?: boolean }) => {
      const body = options.publishDelay === undefined ? undefined : { publish_delay: options.publishDelay };
      const key = await BrokerClient.fromEnvironment().json("POST", "/v1/signing-keys/rotate", body);
      return options.json ? printJson(key) : printFields(key);
    });

  keys
    .command("list")
    .description("list signing keys with their state: pending, active or retired (never private keys)")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }) => {
      const { items } = await BrokerClient.fromEnvironment().json<{ items: Record<string, unknown>[] }>("GET", "/v1/signing-keys");
      return options.json ? printJson(items) : printTable(items, KEY_COLUMNS);
    });
}

function parsePublishDelay(value: string): number {
  const seconds = parseIntegerOption("--publish-delay", value);
  if (seconds > MAX_KEY_PUBLISH_DELAY_SECONDS) {
    throw new UsageError(`--publish-delay must be at most ${MAX_KEY_PUBLISH_DELAY_SECONDS} seconds (one day), not ${value}`);
  }
  return seconds;
}
