import { UpstreamNotFound, UpstreamRejected } from "../errors.js";
import { isVaultResponseError, vaultStatus } from "./vault-errors.js";
import type { PreparedVaultCall } from "./vault-sessions.js";
import type { VaultDynamicSettings } from "./vault-settings.js";

type DynamicCall = PreparedVaultCall<VaultDynamicSettings>;

/** Vault's 400 messages for a lease it no longer has; the lease counts as gone. */
const LEASE_GONE_MESSAGES = ["lease not found", "lease expired", "invalid lease"];

/** A Vault lease: its id and the seconds Vault granted. */
export interface VaultLease {
  leaseId: string;
  leaseDuration: number;
}

/** Returns the prefix every lease of the secret's role starts with: `<mount>/creds/<role>/`. */
export function rolePrefix(settings: VaultDynamicSettings): string {
  return `${settings.database.mount}/creds/${settings.database.role}/`;
}

/** Rejects a lease id that does not belong to the secret's role, so that no other lease is renewed or revoked. */
export function requireOwnLease(call: DynamicCall, secretName: string, leaseId: string): void {
  if (!leaseId.startsWith(rolePrefix(call.settings)) || leaseId.length === rolePrefix(call.settings).length) {
    throw new UpstreamRejected(
      `upstream lease id of secret ${secretName} does not start with ${rolePrefix(call.settings)}; ` +
        "the adapter renews and revokes only leases of the secret's role, so no lease was changed",
    );
  }
}

/**
 * Renews a lease by `increment` seconds from now with sys/leases/renew. Vault may grant
 * less (the role's max TTL); the granted seconds are returned. A lease Vault no longer
 * has is `UpstreamNotFound`.
 */
export async function renewVaultLease(call: DynamicCall, secretName: string, leaseId: string, increment: number): Promise<VaultLease> {
  try {
    const response = await call.send(`renew lease ${leaseId}`, (client) => client.renew({ lease_id: leaseId, increment }));
    const granted = response?.lease_duration;
    if (typeof granted !== "number") {
      throw new UpstreamRejected(`Vault's response to the renewal of lease ${leaseId} (secret ${secretName}) has no lease_duration`);
    }
    return { leaseId, leaseDuration: granted };
  } catch (error) {
    if (isLeaseGone(error)) {
      throw new UpstreamNotFound(`Vault no longer has lease ${leaseId} of secret ${secretName}; it expired or was revoked, so obtain a new credential`);
    }
    throw error;
  }
}

/**
 * Revokes a lease with sys/leases/revoke and `sync: true`, so that Vault answers once
 * the credential is gone. node-vault's `revoke()` drops `sync` and treats Vault's 202
 * as an error, so the request is a plain write, and a 202 counts as success. A lease
 * Vault does not have is not an error there.
 */
export async function revokeVaultLease(call: DynamicCall, leaseId: string): Promise<void> {
  try {
    await call.send(`revoke lease ${leaseId}`, (client) => client.write("sys/leases/revoke", { lease_id: leaseId, sync: true }));
  } catch (error) {
    if (!isAccepted(error) && !isLeaseGone(error)) {
      throw error;
    }
  }
}

/**
 * Revokes every lease under `prefix` with sys/leases/revoke-prefix (which needs sudo).
 * node-vault's `revokePrefix()` calls the legacy sys/revoke-prefix path, which OpenBao
 * 2.5.4 removed, so the request is a plain write.
 */
export async function revokeVaultLeasePrefix(call: DynamicCall, prefix: string): Promise<void> {
  try {
    await call.send(`revoke the leases under ${prefix}`, (client) => client.write(`sys/leases/revoke-prefix/${prefix}`, { sync: true }));
  } catch (error) {
    if (!isAccepted(error)) {
      throw error;
    }
  }
}

/** Vault's 202 Accepted: the revocation was queued. node-vault rejects every status but 200 and 204. */
function isAccepted(error: unknown): boolean {
  const cause = (error as { cause?: unknown }).cause;
  return (cause as { status?: number } | undefined)?.status === 202 || vaultStatus(error) === 202;
}

function isLeaseGone(error: unknown): boolean {
  const cause = (error as { cause?: unknown }).cause as { status?: number; message?: string } | undefined;
  if (isVaultResponseError(error)) {
    return error.response.statusCode === 400 && LEASE_GONE_MESSAGES.some((message) => error.message.includes(message));
  }
  return cause?.status === 400 && LEASE_GONE_MESSAGES.some((message) => cause.message?.includes(message) === true);
}
