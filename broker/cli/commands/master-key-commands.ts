import type { Command } from "commander";
import { BrokerClient } from "../broker-client.js";
import { printJson, printTable } from "../output.js";

const USAGE_COLUMNS = ["master_key_id", "current", "loaded", "data_keys", "signing_keys"];

const ROTATE_HELP = `
With BROKER_MASTER_KEY (several replicas):
  1. generate a key: openssl rand -base64 32
  2. set BROKER_MASTER_KEY=new,old and restart the replicas one at a time;
     each can still open what the old key wrapped. Do not rotate signing
     keys until every replica has restarted.
  3. run: secrets-broker master-key rotate
  4. at the next restart, remove the keys it lists as retired.

Without BROKER_MASTER_KEY (the key file in the data directory), the broker
generates the new key, writes the file with the new key first and the old
one second, re-wraps, then rewrites the file with the new key only.
`;

interface RotationView {
  source: string;
  current_key_id: string;
  generated_key: boolean;
  rewrapped: { master_key_id: string; data_keys: number; signing_keys: number }[];
  key_ids_in_use: (string | null)[];
  retired_key_ids: string[];
}

interface StatusView {
  source: string;
  current_key_id: string;
  key_ids: string[];
  usage: Record<string, unknown>[];
}

/** `secrets-broker master-key rotate|status`: HTTP clients of the running broker, admin role. */
export function addMasterKeyCommands(program: Command): void {
  const masterKey = program
    .command("master-key")
    .description("show and rotate the master keys that wrap the broker's signing keys and data keys");

  masterKey
    .command("rotate")
    .description("re-wrap every stored key under the current master key (admin role); in file mode, generate that key first")
    .option("--json", "print JSON")
    .addHelpText("after", ROTATE_HELP)
    .action(async (options: { json?: boolean }) => {
      const rotation = await BrokerClient.fromEnvironment().json<RotationView>("POST", "/v1/sys/master-key/rotate");
      return options.json ? printJson(rotation) : printRotation(rotation);
    });

  masterKey
    .command("status")
    .description("show the current master key id, where the keys come from, and how many stored keys each master key wraps (admin role)")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }) => {
      const status = await BrokerClient.fromEnvironment().json<StatusView>("GET", "/v1/sys/master-key");
      if (options.json) {
        return printJson(status);
      }
      process.stdout.write(`current master key: ${status.current_key_id} (from ${describeSource(status.source)})\n`);
      printTable(status.usage, USAGE_COLUMNS);
    });
}

function printRotation(rotation: RotationView): void {
  const lines = [`current master key: ${rotation.current_key_id} (from ${describeSource(rotation.source)})`];
  if (rotation.generated_key) {
    lines.push("generated a new master key and wrote it to the key file");
  }
  if (rotation.rewrapped.length === 0) {
    lines.push("re-wrapped nothing: every stored key was already under the current master key");
  }
  for (const count of rotation.rewrapped) {
    lines.push(`re-wrapped ${plural(count.data_keys, "data key")} and ${plural(count.signing_keys, "signing key")} from master key ${count.master_key_id}`);
  }
  lines.push(`master keys in use: ${rotation.key_ids_in_use.map((id) => id ?? "unknown").join(", ") || "none"}`);
  lines.push(...retiredKeyAdvice(rotation));
  process.stdout.write(`${lines.join("\n")}\n`);
}

function retiredKeyAdvice(rotation: RotationView): string[] {
  const stillWrapping = rotation.key_ids_in_use.filter((id) => id !== rotation.current_key_id);
  if (stillWrapping.length > 0) {
    return ["some stored keys are still under another master key; run the rotation again, and keep those keys until it reports none"];
  }
  if (rotation.retired_key_ids.length === 0) {
    return [];
  }
  const ids = rotation.retired_key_ids.join(", ");
  return rotation.source === "file"
    ? [`removed master key ${ids} from the key file`]
    : [`master key ${ids} no longer wraps anything: remove it from BROKER_MASTER_KEY at the next restart`];
}

function describeSource(source: string): string {
  return source === "environment" ? "BROKER_MASTER_KEY" : "the key file in the data directory";
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
