import type { NodeVaultClient } from "./vault-client.js";
import { isVaultResponseError, vaultMessage, vaultStatus } from "./vault-errors.js";

/** Most KV paths and folders one discovery visits, so that a huge or cyclic listing stops. */
export const MAX_DISCOVERED_ENTRIES = 5000;

/** The result of a discovery: KV v2 secret paths under the prefix, and database roles. */
export interface DiscoveredEstate {
  kvPaths: string[];
  dynamicRoles: string[];
  staticRoles: string[];
  /** Listings that failed or were cut short, as messages for the operator. */
  warnings: string[];
}

export interface DiscoveryRequest {
  kvMount: string;
  /** Folder inside the KV mount, such as `prod/`; empty for the whole mount. */
  prefix: string;
  /** Database mount whose roles are listed, or undefined to skip roles. */
  databaseMount: string | undefined;
}

/**
 * Lists KV v2 secret paths under `prefix` (recursively, through `<mount>/metadata/`) and
 * the dynamic and static roles of a database mount. A listing for which Vault returns 404
 * is empty. Any other failure of a role listing becomes a warning, but a failed KV listing
 * is an error, because the KV paths are what the operator requested.
 */
export async function discoverVaultEstate(client: NodeVaultClient, request: DiscoveryRequest): Promise<DiscoveredEstate> {
  const warnings: string[] = [];
  const kvPaths = await listKvPaths(client, request.kvMount, normalizeFolder(request.prefix), warnings);
  const dynamicRoles = request.databaseMount === undefined ? [] : await listRoles(client, `${request.databaseMount}/roles`, warnings);
  const staticRoles = request.databaseMount === undefined ? [] : await listRoles(client, `${request.databaseMount}/static-roles`, warnings);
  return { kvPaths, dynamicRoles, staticRoles, warnings };
}

async function listKvPaths(client: NodeVaultClient, mount: string, prefix: string, warnings: string[]): Promise<string[]> {
  const found: string[] = [];
  const folders = [prefix];
  let visited = 0;
  for (let folder = folders.shift(); folder !== undefined; folder = folders.shift()) {
    for (const key of await listKeys(client, `${mount}/metadata/${folder}`)) {
      visited += 1;
      if (visited > MAX_DISCOVERED_ENTRIES) {
        warnings.push(`stopped after ${MAX_DISCOVERED_ENTRIES} KV entries under ${mount}/${prefix}; narrow --prefix to see the rest`);
        return found.sort();
      }
      if (key.endsWith("/")) {
        folders.push(`${folder}${key}`);
      } else {
        found.push(`${folder}${key}`);
      }
    }
  }
  return found.sort();
}

async function listRoles(client: NodeVaultClient, path: string, warnings: string[]): Promise<string[]> {
  try {
    return (await listKeys(client, path)).sort();
  } catch (error) {
    const reason = isVaultResponseError(error) ? `${vaultStatus(error)}: ${vaultMessage(error)}` : (error as Error).message;
    warnings.push(`could not list ${path} (${reason}); its roles were skipped`);
    return [];
  }
}

/** Lists one folder with GET `?list=1`; a 404 with no errors is an empty folder. */
async function listKeys(client: NodeVaultClient, path: string): Promise<string[]> {
  try {
    const response = await client.list(path);
    const keys = response?.data?.keys;
    return Array.isArray(keys) ? keys.filter((key): key is string => typeof key === "string" && key !== "") : [];
  } catch (error) {
    const body = isVaultResponseError(error) ? (error.response.body as { errors?: unknown[] } | undefined) : undefined;
    if (vaultStatus(error) === 404 && (body?.errors?.length ?? 0) === 0) {
      return [];
    }
    throw error;
  }
}

function normalizeFolder(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, "");
  return trimmed === "" || trimmed.endsWith("/") ? trimmed : `${trimmed}/`;
}
