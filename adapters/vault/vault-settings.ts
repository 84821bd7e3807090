import type { z } from "zod";
import type { SecretKind } from "../contract.js";
import { type InvalidSetting, InvalidAdapterSettings } from "../errors.js";
import { dynamicSettingsSchema, staticSettingsSchema } from "./settings-schema.js";

export type VaultStaticSettings = z.output<typeof staticSettingsSchema>;
export type VaultDynamicSettings = z.output<typeof dynamicSettingsSchema>;
export type VaultSettings = VaultStaticSettings | VaultDynamicSettings;
export type VaultConnection = VaultSettings["connection"];
export type VaultAuth = VaultSettings["auth"];

/** The settings type of each secret kind. */
export type VaultSettingsOf<K extends SecretKind> = K extends "static" ? VaultStaticSettings : VaultDynamicSettings;

const LITERAL_CREDENTIAL_REASON =
  "a literal credential is not accepted; store it in a local secret and name that secret in auth.token_secret or auth.secret_id_secret";

/** Reasons for top-level fields of the other kind, so that a secret created with the wrong kind learns which kind takes them. */
const OTHER_KIND_FIELDS: Record<SecretKind, Record<string, string>> = {
  dynamic: {
    kv: "applies only to static secrets; a dynamic secret issues database credentials from database.role",
    static_role: "applies only to static secrets; create the secret as static to read a database static role",
  },
  static: { database: "applies only to dynamic secrets; a static secret reads kv or static_role" },
};

/**
 * Validates the settings of a Vault secret of `kind` and fills in defaults. Throws
 * `InvalidAdapterSettings` with one entry per bad field, named by its dotted path.
 */
export function parseVaultSettings<K extends SecretKind>(kind: K, settings: unknown): VaultSettingsOf<K> {
  if (kind !== "dynamic" && kind !== "static") {
    throw new InvalidAdapterSettings([{ name: "kind", reason: `must be dynamic or static; the vault adapter does not serve ${String(kind)} secrets` }]);
  }
  const result = kind === "static" ? staticSettingsSchema.safeParse(settings) : dynamicSettingsSchema.safeParse(settings);
  if (!result.success) {
    throw new InvalidAdapterSettings(result.error.issues.flatMap((issue) => toInvalidSettings(kind, issue)));
  }
  return result.data as VaultSettingsOf<K>;
}

/** Returns the broker-side description of where a secret lives, for messages: `address[/namespace] mount/path`. */
export function describeLocation(settings: VaultSettings): string {
  const server = settings.connection.namespace ? `${settings.connection.address} namespace ${settings.connection.namespace}` : settings.connection.address;
  if ("database" in settings) return `${server} ${settings.database.mount}/creds/${settings.database.role}`;
  if (settings.kv) return `${server} ${settings.kv.mount}/data/${settings.kv.path}`;
  return `${server} ${settings.static_role!.mount}/static-creds/${settings.static_role!.name}`;
}

function toInvalidSettings(kind: SecretKind, issue: z.core.$ZodIssue): InvalidSetting[] {
  if (issue.code === "unrecognized_keys") {
    const atRoot = issue.path.length === 0;
    const inAuth = issue.path.length === 1 && issue.path[0] === "auth";
    return issue.keys.map((key) => ({
      name: settingPath([...issue.path, key]),
      reason:
        (atRoot ? OTHER_KIND_FIELDS[kind][key] : undefined) ??
        (inAuth && (key === "token" || key === "secret_id") ? LITERAL_CREDENTIAL_REASON : "unknown setting; remove it"),
    }));
  }
  if (issue.code === "invalid_union" && issue.path.length === 1 && issue.path[0] === "auth") {
    return [{ name: "auth.method", reason: "must be token or approle" }];
  }
  return [{ name: settingPath(issue.path), reason: issue.message }];
}

/** Joins a zod path as `connection.address`, and the root as `settings`. */
function settingPath(path: readonly PropertyKey[]): string {
  const joined = path
    .map((part, index) => (typeof part === "number" ? `[${part}]` : `${index === 0 ? "" : "."}${String(part)}`))
    .join("");
  return joined || "settings";
}
