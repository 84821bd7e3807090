import type { DiscoveredEstate } from "../../adapters/vault/discovery.js";
import { InvalidAdapterSettings } from "../../adapters/errors.js";
import { parseVaultSettings, type VaultAuth, type VaultConnection } from "../../adapters/vault/vault-settings.js";

/** One secret that discovery would register. */
export interface PlannedSecret {
  name: string;
  kind: "static" | "dynamic";
  /** The Vault path it reads, for the operator's review. */
  vault_path: string;
  settings: Record<string, unknown>;
  /** The generate policy of a KV secret, when the operator named the field rotations replace. */
  generate?: { field: string };
}

export interface PlanOptions {
  namePrefix: string;
  kvMount: string;
  databaseMount: string | undefined;
  connection: VaultConnection;
  auth: VaultAuth;
  /** The field of each KV secret that rotations replace with a generated value. */
  generateField: string | undefined;
}

/** The broker's secret-name rule: lowercase path segments of letters, digits, '.', '_' or '-'. */
const SECRET_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/;
const MAX_SECRET_NAME_LENGTH = 256;

/**
 * Turns what discovery found into secrets to register: KV paths as static secrets named
 * `<name prefix><mount>/<path>`, dynamic roles as `<name prefix><db mount>/creds/<role>`
 * and static roles as `<name prefix><db mount>/static-creds/<role>`. A Vault path the
 * adapter's settings do not accept, or one that maps to no valid or to an already planned
 * broker name, is skipped with a warning.
 */
export function planSecrets(found: DiscoveredEstate, options: PlanOptions): { secrets: PlannedSecret[]; warnings: string[] } {
  const base = { connection: options.connection, auth: options.auth };
  const candidates: PlannedSecret[] = [
    ...found.kvPaths.map((path) => ({
      name: `${options.namePrefix}${options.kvMount}/${path}`,
      kind: "static" as const,
      vault_path: `${options.kvMount}/data/${path}`,
      settings: { ...base, kv: { mount: options.kvMount, path } },
      ...(options.generateField === undefined ? {} : { generate: { field: options.generateField } }),
    })),
    ...found.dynamicRoles.map((role) => ({
      name: `${options.namePrefix}${options.databaseMount}/creds/${role}`,
      kind: "dynamic" as const,
      vault_path: `${options.databaseMount}/creds/${role}`,
      settings: { ...base, database: { mount: options.databaseMount, role } },
    })),
    ...found.staticRoles.map((name) => ({
      name: `${options.namePrefix}${options.databaseMount}/static-creds/${name}`,
      kind: "static" as const,
      vault_path: `${options.databaseMount}/static-creds/${name}`,
      settings: { ...base, static_role: { mount: options.databaseMount, name } },
    })),
  ];

  const warnings = [...found.warnings];
  const secrets: PlannedSecret[] = [];
  const plannedNames = new Set<string>();
  for (const candidate of candidates) {
    const problem = settingsProblem(candidate);
    if (problem !== undefined) {
      warnings.push(`skipped ${candidate.vault_path}: the vault adapter does not accept it (${problem}); register it by hand`);
      continue;
    }
    const name = brokerName(candidate.name);
    if (name === undefined || plannedNames.has(name)) {
      warnings.push(`skipped ${candidate.vault_path}: it maps to ${name === undefined ? "no valid" : "an already planned"} broker secret name (${candidate.name}); register it by hand`);
      continue;
    }
    plannedNames.add(name);
    secrets.push({ ...candidate, name });
  }
  return { secrets, warnings };
}

function settingsProblem(candidate: PlannedSecret): string | undefined {
  try {
    parseVaultSettings(candidate.kind, candidate.settings);
    return undefined;
  } catch (error) {
    if (error instanceof InvalidAdapterSettings) return error.message;
    throw error;
  }
}

/** Lowercases a Vault path and replaces characters the broker's names do not allow with '-'; undefined when no valid name results. */
function brokerName(path: string): string | undefined {
  const name = path
    .toLowerCase()
    .split("/")
    .map((segment) => segment.replace(/[^a-z0-9._-]/g, "-").replace(/^[._-]+/, ""))
    .join("/");
  return name.length <= MAX_SECRET_NAME_LENGTH && SECRET_NAME_PATTERN.test(name) ? name : undefined;
}
