import type { SecretData } from "../contract.js";
import { InvalidAdapterSettings, UpstreamRejected } from "../errors.js";
import { VaultPathUnsupported, VaultSecretMissing } from "./vault-errors.js";
import type { VaultLease } from "./vault-leases.js";
import type { PreparedVaultCall } from "./vault-sessions.js";
import type { VaultDynamicSettings, VaultStaticSettings } from "./vault-settings.js";

/** A new dynamic database credential and its Vault lease. */
export interface DynamicCredential extends VaultLease {
  data: SecretData;
}

/** The current password of a static role and when Vault last rotated it. */
export interface StaticRoleCredential {
  data: SecretData;
  /** Vault's last_vault_rotation, an RFC 3339 time: the version of the value. */
  lastRotation: string;
}

/** Creates a database user through GET `<mount>/creds/<role>`; Vault returns it with a lease. */
export async function createDynamicCredential(call: PreparedVaultCall<VaultDynamicSettings>, secretName: string): Promise<DynamicCredential> {
  const { mount, role } = call.settings.database;
  const response = await call.send(`create a credential of role ${role}`, (client) => client.read(`${mount}/creds/${role}`));
  const leaseId = response?.lease_id;
  const leaseDuration = response?.lease_duration;
  const data = response?.data as Record<string, unknown> | undefined;
  if (typeof leaseId !== "string" || leaseId === "" || typeof leaseDuration !== "number" || !isStringRecord(data)) {
    throw new UpstreamRejected(`Vault's response for ${call.location} (secret ${secretName}) has no lease or no string credentials; check that database.mount is a database engine`);
  }
  return { leaseId, leaseDuration, data };
}

/**
 * Reads the dynamic role's definition at `<mount>/roles/<role>` to check that Vault has
 * the role, without creating a credential. Vault returns 404 with empty `errors` for a
 * role it does not have, and a "no handler" 404 for a mount no engine serves.
 */
export async function requireDatabaseRole(call: PreparedVaultCall<VaultDynamicSettings>): Promise<void> {
  const { mount, role } = call.settings.database;
  const server = call.settings.connection.address;
  try {
    await call.send(`read database role ${role}`, (client) => client.read(`${mount}/roles/${role}`));
  } catch (error) {
    if (error instanceof VaultSecretMissing) {
      throw new InvalidAdapterSettings([{ name: "database.role", reason: `Vault at ${server} has no role ${role} under ${mount}/roles/; create the role in Vault or correct the name` }]);
    }
    if (error instanceof VaultPathUnsupported) {
      throw new InvalidAdapterSettings([{ name: "database.mount", reason: `no database secrets engine serves ${mount}/ at ${server}; correct the mount path` }]);
    }
    throw error;
  }
}

/** Reads `<mount>/static-creds/<name>`: the static role's username and current password. */
export async function readStaticRoleCredential(call: PreparedVaultCall<VaultStaticSettings>, secretName: string): Promise<StaticRoleCredential> {
  const { mount, name } = call.settings.static_role!;
  const response = await call.send(`read the credentials of static role ${name}`, (client) => client.read(`${mount}/static-creds/${name}`));
  const data = response?.data as { username?: unknown; password?: unknown; last_vault_rotation?: unknown } | undefined;
  if (typeof data?.username !== "string" || typeof data.password !== "string" || typeof data.last_vault_rotation !== "string") {
    throw new UpstreamRejected(`Vault's response for ${call.location} (secret ${secretName}) has no username, password and last_vault_rotation`);
  }
  return { data: { username: data.username, password: data.password }, lastRotation: data.last_vault_rotation };
}

/** Asks Vault to set a new password for the static role now, through `<mount>/rotate-role/<name>`. */
export async function rotateStaticRole(call: PreparedVaultCall<VaultStaticSettings>): Promise<void> {
  const { mount, name } = call.settings.static_role!;
  await call.send(`rotate static role ${name}`, (client) => client.write(`${mount}/rotate-role/${name}`, {}));
}

function isStringRecord(value: Record<string, unknown> | undefined): value is SecretData {
  return typeof value === "object" && value !== null && Object.values(value).every((field) => typeof field === "string");
}
