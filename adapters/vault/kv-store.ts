import type { SecretData } from "../contract.js";
import { UpstreamConflict, UpstreamRejected } from "../errors.js";
import { safeCause } from "./vault-errors.js";
import type { PreparedVaultCall } from "./vault-sessions.js";
import type { VaultStaticSettings } from "./vault-settings.js";

/** Vault's 400 message for a write whose `cas` is not the current version. */
const CAS_MISMATCH = "check-and-set parameter did not match the current version";

/** One KV v2 version as read: its data, and Vault's version number as a string. */
export interface KvVersion {
  data: SecretData;
  version: string;
}

type KvCall = PreparedVaultCall<VaultStaticSettings>;

function kvOf(call: KvCall): { mount: string; path: string } {
  return call.settings.kv!;
}

/** Reads version `version` of the secret, or the latest without one. String fields only; others are rejected. */
export async function readKvVersion(call: KvCall, secretName: string, version?: string): Promise<KvVersion> {
  const { mount, path } = kvOf(call);
  const query = version === undefined ? "" : `?version=${encodeURIComponent(version)}`;
  const response = await call.send(version === undefined ? "read the latest version" : `read version ${version}`, (client) =>
    client.read(`${mount}/data/${path}${query}`),
  );
  const data = response?.data?.data as Record<string, unknown> | null | undefined;
  const number = response?.data?.metadata?.version as unknown;
  if (typeof data !== "object" || data === null || typeof number !== "number") {
    throw new UpstreamRejected(`Vault's response for ${call.location} (secret ${secretName}) is not a KV version 2 secret; check that kv.mount is a KV v2 mount`);
  }
  return { data: stringFields(data, secretName, call.location), version: String(number) };
}

/** Returns the latest version number of the secret, 0 when it has none. */
export async function readKvCurrentVersion(call: KvCall): Promise<number> {
  const { mount, path } = kvOf(call);
  try {
    const response = await call.send("read the metadata", (client) => client.read(`${mount}/metadata/${path}`));
    const current = response?.data?.current_version as unknown;
    return typeof current === "number" ? current : 0;
  } catch (error) {
    if ((error as { code?: string }).code === "upstream_not_found") {
      return 0;
    }
    throw error;
  }
}

/** A write whose check-and-set failed: Vault's latest version is no longer the one the write named. */
export class KvCasMismatch extends UpstreamConflict {
  override name = "KvCasMismatch";
}

/**
 * Writes `data` as a new version only if the latest version is still `cas` (0 for a new
 * key). A mismatch means someone else wrote first, so nothing is overwritten and the
 * write fails with `KvCasMismatch`, whose message ends with `recovery`: what the
 * operator does next. Returns the new version number.
 */
export async function writeKvVersion(call: KvCall, secretName: string, data: SecretData, cas: number, recovery: string): Promise<string> {
  const { mount, path } = kvOf(call);
  let response: { data?: { version?: unknown } } | undefined;
  try {
    response = await call.send(`write a new version with cas ${cas}`, (client) => client.write(`${mount}/data/${path}`, { options: { cas }, data }));
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    if (isCasMismatch(cause)) {
      throw new KvCasMismatch(`someone else wrote ${call.location} after version ${cas} (secret ${secretName}); nothing was overwritten. ${recovery}`, {
        cause: safeCause(cause),
      });
    }
    throw error;
  }
  const version = response?.data?.version;
  if (typeof version !== "number") {
    throw new UpstreamRejected(`Vault's response to the write of ${call.location} (secret ${secretName}) has no version number`);
  }
  return String(version);
}

/** Soft-deletes one version, so that readers of the latest version no longer get it. */
export async function deleteKvVersion(call: KvCall, version: string): Promise<void> {
  const { mount, path } = kvOf(call);
  await call.send(`delete version ${version}`, (client) => client.write(`${mount}/delete/${path}`, { versions: [Number(version)] }));
}

function isCasMismatch(error: unknown): boolean {
  return error instanceof Error && (error as { status?: number }).status === 400 && error.message.includes(CAS_MISMATCH);
}

function stringFields(data: Record<string, unknown>, secretName: string, location: string): SecretData {
  const nonString = Object.entries(data).filter(([, value]) => typeof value !== "string").map(([name]) => name);
  if (nonString.length > 0) {
    throw new UpstreamRejected(
      `${location} (secret ${secretName}) has fields that are not strings: ${nonString.join(", ")}; the broker hands out string fields only`,
    );
  }
  return data as SecretData;
}
