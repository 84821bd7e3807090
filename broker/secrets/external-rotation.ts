import type { UpstreamRotation } from "../../adapters/contract.js";
import type { ExternalRotation } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { localSecretReader } from "./local-secret-reader.js";
import { type SecretRow, toSecretRef } from "./secret-views.js";

/**
 * Reads the upstream's own rotation configuration of a secret, or returns null when its
 * adapter has none to read. Runs outside any transaction, as every adapter call does.
 */
export async function readUpstreamRotation(deps: BrokerDeps, row: SecretRow): Promise<UpstreamRotation | null> {
  const adapter = deps.adapters.get(row.adapter);
  if (adapter.describeRotation === undefined) {
    return null;
  }
  return deps.adapters.call(row.adapter, toSecretRef(row), "describe_rotation", localSecretReader(deps), (described, call) => described.describeRotation!(call));
}

/** Converts an upstream rotation to the record kept on the secret, or null when the upstream does not rotate it. */
export function toExternalRotation(upstream: UpstreamRotation | null, now: Date): ExternalRotation | null {
  if (upstream === null || !upstream.enabled || upstream.rotator === null) {
    return null;
  }
  return { rotator: upstream.rotator, schedule: upstream.schedule, window: upstream.window, checked_at: now.toISOString() };
}

/** Explains why the broker does not rotate a secret its upstream rotates, with the fix. */
export function rotatedUpstreamReason(external: ExternalRotation): string {
  return (
    `the upstream rotates this secret itself (${external.rotator}, schedule ${external.schedule ?? "none"}), so the broker does not rotate it; ` +
    "rotate it upstream, or turn off the upstream rotation and register the secret again"
  );
}
