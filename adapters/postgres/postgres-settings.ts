import type { z } from "zod";
import type { SecretKind } from "../contract.js";
import { type InvalidSetting, InvalidAdapterSettings } from "../errors.js";
import { dynamicSettingsSchema, type SslMode, staticSettingsSchema } from "./settings-schema.js";

/** Server address, TLS mode and admin login, the same for both kinds. */
export type PostgresConnectionSettings = {
  host: string;
  port: number;
  database: string;
  /** The admin role the broker logs in as to create, alter and drop roles. */
  username: string;
  /** Name of the local secret that stores the admin password. */
  password_secret: string;
  /** Field of that local secret that contains the password. */
  password_field: string;
  ssl: SslMode;
  /** PEM CA certificates that verify-full trusts instead of Node's default store. */
  ca?: string;
};

/** Settings of a dynamic PostgreSQL secret after validation, with every default filled in. */
export type PostgresDynamicSettings = {
  connection: PostgresConnectionSettings;
  role: {
    /** Group roles every dynamic role joins, spelled as in pg_roles (case-sensitive). */
    member_of: string[];
    name_prefix?: string;
    connection_limit?: number;
  };
};

/** Settings of a static PostgreSQL secret after validation. */
export type PostgresStaticSettings = {
  connection: PostgresConnectionSettings;
  role: {
    /** The existing login role whose password the broker rotates, spelled as in pg_roles (case-sensitive). */
    name: string;
  };
};

export type PostgresSettings = PostgresDynamicSettings | PostgresStaticSettings;

/** The settings type of each secret kind. */
export type PostgresSettingsOf<K extends SecretKind> = K extends "static" ? PostgresStaticSettings : PostgresDynamicSettings;

const LOOPBACK_HOSTS = new Set(["localhost", "::1"]);
const LOOPBACK_IPV4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

const LITERAL_PASSWORD_REASON =
  "a literal password is not accepted; store the admin password in a local secret and name it in connection.password_secret";

const DYNAMIC_ONLY_REASON =
  "applies only to dynamic secrets; a static secret rotates the password of the existing role in role.name, so remove it";

/** Reasons for role fields of the other kind, so that a secret created with the wrong kind or shape learns which kind takes them. */
const OTHER_KIND_ROLE_FIELDS: Record<SecretKind, Record<string, string>> = {
  dynamic: {
    name: "applies only to static secrets; a dynamic secret gets a new role per lease, so remove it or create the secret as static",
  },
  static: { member_of: DYNAMIC_ONLY_REASON, name_prefix: DYNAMIC_ONLY_REASON, connection_limit: DYNAMIC_ONLY_REASON },
};

/**
 * Validates the settings of a PostgreSQL secret of `kind` and fills in defaults. Throws
 * `InvalidAdapterSettings` with one entry per bad field, named by its dotted path.
 * When `ssl` is absent it becomes `disable` for a loopback host and `verify-full`
 * for any other host, so traffic leaves the machine unencrypted only when set so.
 */
export function parsePostgresSettings<K extends SecretKind>(kind: K, settings: unknown): PostgresSettingsOf<K> {
  if (kind !== "dynamic" && kind !== "static") {
    throw new InvalidAdapterSettings([{ name: "kind", reason: `must be dynamic or static; the postgres adapter does not serve ${String(kind)} secrets` }]);
  }

  const result = kind === "static" ? staticSettingsSchema.safeParse(settings) : dynamicSettingsSchema.safeParse(settings);
  if (!result.success) {
    throw new InvalidAdapterSettings(result.error.issues.flatMap((issue) => toInvalidSettings(kind, issue)));
  }

  const { connection, role } = result.data;
  const ssl = connection.ssl ?? (isLoopback(connection.host) ? "disable" : "verify-full");

  // Keys in a fixed order, so that equal settings serialize to equal JSON.
  const normalized: PostgresConnectionSettings = {
    host: connection.host,
    port: connection.port,
    database: connection.database,
    username: connection.username,
    password_secret: connection.password_secret,
    password_field: connection.password_field,
    ssl,
    ...(connection.ca === undefined ? {} : { ca: connection.ca }),
  };
  // The schema was chosen by `kind`, so `role` has the shape of that kind.
  return { connection: normalized, role } as PostgresSettingsOf<K>;
}

function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTS.has(host.toLowerCase()) || LOOPBACK_IPV4.test(host);
}

function toInvalidSettings(kind: SecretKind, issue: z.core.$ZodIssue): InvalidSetting[] {
  if (issue.code === "unrecognized_keys") {
    const inRole = issue.path.length === 1 && issue.path[0] === "role";
    return issue.keys.map((key) => ({
      name: settingPath([...issue.path, key]),
      reason: (inRole ? OTHER_KIND_ROLE_FIELDS[kind][key] : undefined) ?? (key === "password" ? LITERAL_PASSWORD_REASON : "unknown setting; remove it"),
    }));
  }
  return [{ name: settingPath(issue.path), reason: issue.message }];
}

/** Joins a zod path as `connection.host` or `role.member_of[2]`, and the root as `settings`. */
function settingPath(path: readonly PropertyKey[]): string {
  const joined = path
    .map((part, index) => (typeof part === "number" ? `[${part}]` : `${index === 0 ? "" : "."}${String(part)}`))
    .join("");
  return joined || "settings";
}
