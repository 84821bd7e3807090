import { isIP } from "node:net";
import { z } from "zod";
import { DYNAMIC_ROLE_NAME } from "./role-credentials.js";

/** PostgreSQL truncates identifiers longer than NAMEDATALEN - 1 = 63 bytes. */
export const MAX_IDENTIFIER_BYTES = 63;
/** Group roles one dynamic role may join. */
export const MAX_GROUP_ROLES = 20;
/** Highest CONNECTION LIMIT a dynamic role may get. */
export const MAX_CONNECTION_LIMIT = 1000;
export const DEFAULT_PORT = 5432;
export const DEFAULT_PASSWORD_FIELD = "password";
/** A CA bundle larger than this is certainly not one; 64 KiB. */
const MAX_CA_BYTES = 64 * 1024;
const MAX_HOST_LENGTH = 253;
const MAX_SECRET_NAME_LENGTH = 255;

export const SSL_MODES = ["disable", "require", "verify-full"] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** A role name that is safe to quote: the unquoted-identifier alphabet, at most 63 bytes. */
export const IDENTIFIER_PATTERN = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
const NAME_PREFIX_PATTERN = /^[a-z][a-z0-9_]{0,15}$/;
const HOST_NAME_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const SECRET_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;
const FIELD_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
// Control characters, NUL included, which the startup message cannot carry.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
const PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----";

/** Builds zod's `error` option: the reason for a wrong type, prefixed when the field is absent. */
function expecting(description: string) {
  return {
    error: (issue: { input?: unknown }) => (issue.input === undefined ? `is required; ${description}` : description),
  };
}

function byteLength(value: string): number {
  return Buffer.byteLength(value, "utf8");
}

const hostSchema = z
  .string(expecting("must be a host name or an IPv4 address"))
  .max(MAX_HOST_LENGTH, { message: `must be at most ${MAX_HOST_LENGTH} characters`, abort: true })
  .refine((host) => isIP(host) !== 6, {
    message: "IPv6 literals are not supported; use a host name that resolves to the address",
    abort: true,
  })
  .refine((host) => isIP(host) === 4 || HOST_NAME_PATTERN.test(host), "must be a host name or an IPv4 address");

/** Builds the schema of a name that PostgreSQL receives in the startup message, never inside SQL text. */
function startupName(description: string) {
  return z
    .string(expecting(description))
    .min(1, { message: description, abort: true })
    .refine((value) => byteLength(value) <= MAX_IDENTIFIER_BYTES, { message: `must be at most ${MAX_IDENTIFIER_BYTES} bytes`, abort: true })
    .refine((value) => !CONTROL_CHARACTERS.test(value), "must not contain control characters");
}

const connectionSchema = z
  .strictObject(
    {
      host: hostSchema,
      port: z
        .number(expecting("must be a port number from 1 to 65535"))
        .int("must be a port number from 1 to 65535")
        .min(1, "must be a port number from 1 to 65535")
        .max(65535, "must be a port number from 1 to 65535")
        .default(DEFAULT_PORT),
      database: startupName("must be the name of a database"),
      username: startupName("must be the name of the admin role the broker logs in as"),
      password_secret: z
        .string(expecting("must be the name of a local secret that stores the admin password, such as db/orders-admin"))
        .max(MAX_SECRET_NAME_LENGTH, { message: `must be at most ${MAX_SECRET_NAME_LENGTH} characters`, abort: true })
        .regex(SECRET_NAME_PATTERN, "must be the name of a local secret, such as db/orders-admin"),
      password_field: z
        .string(expecting("must be a field name of the local secret"))
        .regex(FIELD_NAME_PATTERN, "must be a field name: a letter or _, then up to 63 letters, digits, _, . or -")
        .default(DEFAULT_PASSWORD_FIELD),
      ssl: z.enum(SSL_MODES, expecting(`must be one of ${SSL_MODES.join(", ")}`)).optional(),
      ca: z
        .string(expecting("must be PEM-encoded CA certificates"))
        .max(MAX_CA_BYTES, { message: `must be at most ${MAX_CA_BYTES} characters`, abort: true })
        .refine((ca) => ca.includes(PEM_CERTIFICATE), `must be PEM-encoded CA certificates starting with ${PEM_CERTIFICATE}`)
        .optional(),
    },
    expecting("must be an object with host, port, database, username and password_secret"),
  )
  .superRefine((connection, context) => {
    if (connection.ca !== undefined && connection.ssl !== "verify-full") {
      context.addIssue({ code: "custom", path: ["ca"], message: "applies only when ssl is verify-full; set ssl to verify-full or remove ca" });
    }
  });

const groupRolesSchema = z
  .array(
    z
      .string(expecting("must be a role name"))
      .regex(IDENTIFIER_PATTERN, "must be a role name: a letter or _, then up to 62 letters, digits, _ or $"),
    expecting("must be a list of group role names"),
  )
  .max(MAX_GROUP_ROLES, `must list at most ${MAX_GROUP_ROLES} group roles`)
  .superRefine((roles, context) => {
    roles.forEach((role, index) => {
      if (roles.indexOf(role) !== index) {
        context.addIssue({ code: "custom", path: [index], message: `duplicates group role ${role}; list each role once` });
      }
    });
  })
  .default([]);

const roleSchema = z
  .strictObject(
    {
      member_of: groupRolesSchema,
      name_prefix: z
        .string(expecting("must be a name prefix"))
        .regex(NAME_PREFIX_PATTERN, "must be 1 to 16 characters: a lowercase letter, then lowercase letters, digits or _")
        .optional(),
      connection_limit: z
        .number(expecting(`must be an integer from 1 to ${MAX_CONNECTION_LIMIT}`))
        .int(`must be an integer from 1 to ${MAX_CONNECTION_LIMIT}`)
        .min(1, `must be an integer from 1 to ${MAX_CONNECTION_LIMIT}`)
        .max(MAX_CONNECTION_LIMIT, `must be an integer from 1 to ${MAX_CONNECTION_LIMIT}`)
        .optional(),
    },
    expecting("must be an object with member_of, name_prefix and connection_limit"),
  )
  .default({ member_of: [] });

/** Settings of a dynamic PostgreSQL secret as the API accepts them, before defaults that depend on other fields. */
export const dynamicSettingsSchema = z.strictObject(
  { connection: connectionSchema, role: roleSchema },
  expecting("must be an object with connection and role"),
);

const staticRoleSchema = z.strictObject(
  {
    name: z
      .string(expecting("must be the name of the login role whose password the broker rotates"))
      .regex(IDENTIFIER_PATTERN, { message: "must be a role name: a letter or _, then up to 62 letters, digits, _ or $", abort: true })
      .refine(
        (name) => !DYNAMIC_ROLE_NAME.test(name),
        "names a role that the broker creates for a dynamic lease; name a role that no lease owns",
      ),
  },
  expecting("must be an object with name, the login role whose password the broker rotates"),
);

/** Settings of a static PostgreSQL secret: the admin connection and the one role whose password is rotated. */
export const staticSettingsSchema = z.strictObject(
  { connection: connectionSchema, role: staticRoleSchema },
  expecting("must be an object with connection and role"),
);
