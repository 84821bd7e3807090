import type { Command } from "commander";
import { BrokerClient } from "../broker-client.js";
import { CliError, UsageError } from "../cli-error.js";
import { parseIntegerOption } from "../options.js";
import { printFields, printJson, printTable } from "../output.js";
import { resolveSecretId } from "../resolve-secret.js";

const ROTATION_COLUMNS = ["id", "secret_id", "trigger", "status", "last_step", "from_version", "to_version", "failed_step", "created_at"];
/** How often `rotate --wait` polls the rotation, in milliseconds. */
const WAIT_POLL_MS = 1000;
const DEFAULT_WAIT_SECONDS = 300;

export function addRotationCommands(program: Command): void {
  program
    .command("rotate")
    .description("rotate a secret now: create a pending version, set it upstream, test it, make it current")
    .argument("<secret>", "secret id (sec_...) or name")
    .option("--compromise", "also revoke every live lease of the older versions when the new one is current")
    .option("--reason <text>", "why, for the audit log")
    .option("--wait", "wait until the rotation completes or rolls back; exit 1 on rollback")
    .option("--timeout <seconds>", `with --wait, give up after this many seconds (default ${DEFAULT_WAIT_SECONDS})`, (value) => parseIntegerOption("--timeout", value))
    .option("--json", "print JSON")
    .action(async (secret: string, options) => {
      if (options.timeout !== undefined && !options.wait) {
        throw new UsageError("--timeout applies to --wait only; add --wait, or leave --timeout out");
      }
      if (options.timeout !== undefined && options.timeout < 1) {
        throw new UsageError("--timeout must be at least 1 second");
      }
      const client = BrokerClient.fromEnvironment();
      const secretId = await resolveSecretId(client, secret);
      let rotation = await client.json("POST", `/v1/secrets/${encodeURIComponent(secretId)}/rotate`, {
        reason: options.reason,
        mode: options.compromise ? "compromise" : "normal",
      });
      if (options.wait) {
        rotation = await waitForRotation(client, rotation.id, options.timeout ?? DEFAULT_WAIT_SECONDS);
      }
      if (options.json) {
        printJson(rotation);
      } else {
        printFields({ ...rotation, steps: rotation.steps.map((step: { step: string; outcome: string }) => `${step.step}:${step.outcome}`) });
      }
      if (rotation.status === "rolled_back") {
        throw new CliError(`rotation ${rotation.id} rolled back at step ${rotation.failed_step}: ${rotation.error}`);
      }
    });

  program
    .command("rotations")
    .description("rotation history")
    .command("list")
    .description("list rotations, in id order; a secret's history in time order is GET /v1/secrets/{id}/rotations")
    .option("--secret <secret>", "only this secret's rotations (id or name)")
    .option("--status <status>", "in_progress, completed or rolled_back")
    .option("--json", "print JSON")
    .action(async (options) => {
      const client = BrokerClient.fromEnvironment();
      const items = await client.listAll("/v1/rotations", {
        secret_id: options.secret ? await resolveSecretId(client, options.secret) : undefined,
        status: options.status,
      });
      return options.json ? printJson(items) : printTable(items, ROTATION_COLUMNS);
    });
}

async function waitForRotation(client: BrokerClient, rotationId: string, timeoutSeconds: number): Promise<any> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const rotation = await client.json("GET", `/v1/rotations/${encodeURIComponent(rotationId)}`);
    if (rotation.status !== "in_progress") {
      return rotation;
    }
    if (Date.now() > deadline) {
      throw new CliError(`rotation ${rotationId} is still in progress after ${timeoutSeconds} s (last step: ${rotation.last_step ?? "none"}); check it with secrets-broker rotations list --secret ${rotation.secret_id}`);
    }
    await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
  }
}
