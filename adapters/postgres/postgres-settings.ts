import type { z } from "zod";
import type { SecretKind } from "../contract.js";
import { type InvalidSetting, InvalidAdapterSettings } from "../errors.js";
import { type SslMode, settingsSchema } from "./settings-schema.js";

/** Settings of a dynamic PostgreSQL secret after validation, with every default filled in. */
export type PostgresSettings = {
  connection: {
    host: string;
    port: number;
    database: string;
    /** The admin role the broker logs in as to create and drop dynamic roles. */
    username: string;
    /** Name of the local secret that stores the admin password. */
    password_secret: string;
    /** Field of that local secret that contains the password. */
    password_field: string;
    ssl: SslMode;
    /** PEM CA certificates that verify-full trusts instead of Node's default store. */
    ca?: string;
  };
  role: {
    /** Group roles every dynamic role joins, spelled as in pg_roles (case-sensitive). */
    member_of: string[];
    name_prefix?: string;
    connection_limit?: number;
  };
};

const LOOPBACK_HOSTS = new Set(["localhost", "::1"]);
const LOOPBACK_IPV4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

const LITERAL_PASSWORD_REASON =
  "a literal password is not accepted; store the admin password in a local secret and name it in connection.password_secret";

/**
 * Validates the settings of a PostgreSQL secret and fills in defaults. Throws
 * `InvalidAdapterSettings` with one entry per bad field, named by its dotted path.
 * When `ssl` is absent it becomes `disable` for a loopback host and `verify-full`
 * for any other host, so traffic leaves the machine unencrypted only when set so.
 */
export function parsePostgresSettings(kind: SecretKind, settings: unknown): PostgresSettings {
  if (kind !== "dynamic") {
    throw new InvalidAdapterSettings([
      { name: "kind", reason: `must be dynamic; the postgres adapter creates dynamic roles and does not serve ${kind} secrets` },
    ]);
  }

  const result = settingsSchema.safeParse(settings);
  if (!result.success) {
    throw new InvalidAdapterSettings(result.error.issues.flatMap(toInvalidSettings));
  }

  const { connection, role } = result.data;
  const ssl = connection.ssl ?? (isLoopback(connection.host) ? "disable" : "verify-full");

  // Keys in a fixed order, so that equal settings serialize to equal JSON.
  return {
    connection: {
      host: connection.host,
      port: connection.port,
      database: connection.database,
      username: connection.username,
      password_secret: connection.password_secret,
      password_field: connection.password_field,
      ssl,
      ...(connection.ca === undefined ? {} : { ca: connection.ca }),
    },
    role,
  };
}

function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTS.has(host.toLowerCase()) || LOOPBACK_IPV4.test(host);
}

function toInvalidSettings(issue: z.core.$ZodIssue): InvalidSetting[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({
      name: settingPath([...issue.path, key]),
      reason: key === "password" ? LITERAL_PASSWORD_REASON : "unknown setting; remove it",
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
