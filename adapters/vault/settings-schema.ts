import { z } from "zod";

/** Seconds one HTTP request to Vault may take, by default and at most. */
export const DEFAULT_REQUEST_TIMEOUT_SECONDS = 10;
export const MAX_REQUEST_TIMEOUT_SECONDS = 300;
export const DEFAULT_APPROLE_MOUNT = "approle";
export const DEFAULT_DATABASE_MOUNT = "database";
export const DEFAULT_TOKEN_FIELD = "token";
export const DEFAULT_SECRET_ID_FIELD = "secret_id";
/** A CA bundle larger than this is certainly not one; 64 KiB. */
const MAX_CA_BYTES = 64 * 1024;
const MAX_ADDRESS_LENGTH = 2048;
const MAX_PATH_LENGTH = 512;
const MAX_SECRET_NAME_LENGTH = 255;
const PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----";

/** Segments of letters, digits, '_', '.' or '-' separated by '/', with no empty, '.' or '..' segment. */
const VAULT_PATH_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$/;
const ROLE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const SECRET_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;
const FIELD_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const ROLE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,256}$/;
/** KV v2 API segments that a path inside the mount must not start with: the adapter adds them. */
const KV_API_SEGMENTS = new Set(["data", "metadata", "delete", "undelete", "destroy", "config", "subkeys"]);
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Builds zod's `error` option: the reason for a wrong type, prefixed when the field is absent. */
function expecting(description: string) {
  return {
    error: (issue: { input?: unknown }) => (issue.input === undefined ? `is required; ${description}` : description),
  };
}

function vaultPath(description: string) {
  return z
    .string(expecting(description))
    .max(MAX_PATH_LENGTH, { message: `must be at most ${MAX_PATH_LENGTH} characters`, abort: true })
    .transform((value) => value.replace(/^\/+|\/+$/g, ""))
    .refine((value) => VAULT_PATH_PATTERN.test(value) && !value.split("/").some((segment) => segment === "." || segment === ".."), description);
}

function localSecretName(description: string) {
  return z
    .string(expecting(description))
    .max(MAX_SECRET_NAME_LENGTH, { message: `must be at most ${MAX_SECRET_NAME_LENGTH} characters`, abort: true })
    .regex(SECRET_NAME_PATTERN, description);
}

function fieldName(fallback: string) {
  return z
    .string(expecting("must be a field name of the local secret"))
    .regex(FIELD_NAME_PATTERN, "must be a field name: a letter or _, then up to 63 letters, digits, _, . or -")
    .default(fallback);
}

const addressSchema = z
  .string(expecting("must be the URL of the Vault server, such as https://vault.example.com:8200"))
  .max(MAX_ADDRESS_LENGTH, { message: `must be at most ${MAX_ADDRESS_LENGTH} characters`, abort: true })
  .superRefine((value, context) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      context.addIssue({ code: "custom", message: "must be the URL of the Vault server, such as https://vault.example.com:8200" });
      return;
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      context.addIssue({ code: "custom", message: "must start with https:// (or http:// for a loopback address)" });
    } else if (url.protocol === "http:" && !LOOPBACK_HOSTS.has(url.hostname)) {
      context.addIssue({ code: "custom", message: "must use https:// unless the server is on a loopback address; plain http would send the Vault token unencrypted" });
    } else if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "" || (url.pathname !== "/" && url.pathname !== "")) {
      context.addIssue({ code: "custom", message: "must be scheme, host and port only, without credentials, path, query or fragment" });
    }
  })
  .transform((value) => new URL(value).origin);

const connectionSchema = z
  .strictObject(
    {
      address: addressSchema,
      namespace: vaultPath("must be a Vault Enterprise namespace path, such as team-a or team-a/prod").optional(),
      ca: z
        .string(expecting("must be PEM-encoded CA certificates"))
        .max(MAX_CA_BYTES, { message: `must be at most ${MAX_CA_BYTES} characters`, abort: true })
        .refine((ca) => ca.includes(PEM_CERTIFICATE), `must be PEM-encoded CA certificates starting with ${PEM_CERTIFICATE}`)
        .optional(),
      timeout_seconds: z
        .number(expecting(`must be a whole number of seconds from 1 to ${MAX_REQUEST_TIMEOUT_SECONDS}`))
        .int(`must be a whole number of seconds from 1 to ${MAX_REQUEST_TIMEOUT_SECONDS}`)
        .min(1, `must be a whole number of seconds from 1 to ${MAX_REQUEST_TIMEOUT_SECONDS}`)
        .max(MAX_REQUEST_TIMEOUT_SECONDS, `must be a whole number of seconds from 1 to ${MAX_REQUEST_TIMEOUT_SECONDS}`)
        .default(DEFAULT_REQUEST_TIMEOUT_SECONDS),
    },
    expecting("must be an object with address, and optionally namespace, ca and timeout_seconds"),
  )
  .superRefine((connection, context) => {
    if (connection.ca !== undefined && connection.address.startsWith("http:")) {
      context.addIssue({ code: "custom", path: ["ca"], message: "applies only to an https:// address; remove it or use https" });
    }
  });

const tokenAuthSchema = z.strictObject({
  method: z.literal("token"),
  token_secret: localSecretName("must be the name of a local secret that stores the broker's Vault token, such as vault/broker-token"),
  token_field: fieldName(DEFAULT_TOKEN_FIELD),
});

const appRoleAuthSchema = z.strictObject({
  method: z.literal("approle"),
  mount: vaultPath("must be the mount path of the AppRole auth method, such as approle").default(DEFAULT_APPROLE_MOUNT),
  role_id: z
    .string(expecting("must be the AppRole role_id"))
    .regex(ROLE_ID_PATTERN, "must be the AppRole role_id: 1 to 256 letters, digits, _, ., : or -"),
  secret_id_secret: localSecretName("must be the name of a local secret that stores the AppRole secret_id, such as vault/broker-approle"),
  secret_id_field: fieldName(DEFAULT_SECRET_ID_FIELD),
});

const authSchema = z.discriminatedUnion("method", [tokenAuthSchema, appRoleAuthSchema], {
  error: (issue) =>
    issue.input === undefined
      ? "is required; give {\"method\": \"token\", \"token_secret\": ...} or {\"method\": \"approle\", \"role_id\": ..., \"secret_id_secret\": ...}"
      : "must be an object whose method is token or approle",
});

const roleName = (description: string) =>
  z.string(expecting(description)).regex(ROLE_NAME_PATTERN, `${description}: a letter or digit, then up to 127 letters, digits, _, . or -`);

const kvSchema = z.strictObject(
  {
    mount: vaultPath("must be the mount path of a KV version 2 engine, such as secret"),
    path: vaultPath("must be the path of the secret inside the mount, such as prod/payments/api-key").refine(
      (path) => !KV_API_SEGMENTS.has(path.split("/")[0]!),
      "must be the path inside the mount without the KV v2 API segment; the adapter adds data/ or metadata/ itself",
    ),
  },
  expecting("must be an object with mount and path"),
);

const staticRoleSchema = z.strictObject(
  {
    mount: vaultPath("must be the mount path of a database secrets engine, such as database").default(DEFAULT_DATABASE_MOUNT),
    name: roleName("must be the name of a database static role"),
  },
  expecting("must be an object with mount and name"),
);

const databaseSchema = z.strictObject(
  {
    mount: vaultPath("must be the mount path of a database secrets engine, such as database").default(DEFAULT_DATABASE_MOUNT),
    role: roleName("must be the name of a database role"),
    /**
     * True when only the broker issues credentials from this Vault role, so that a
     * revocation of all the secret's leases may end every lease under the role at once.
     */
    dedicated_role: z
      .boolean(expecting("must be true when only the broker issues credentials from this Vault role, false otherwise"))
      .default(false),
  },
  expecting("must be an object with mount and role, and optionally dedicated_role"),
);

export const staticSettingsSchema = z
  .strictObject(
    { connection: connectionSchema, auth: authSchema, kv: kvSchema.optional(), static_role: staticRoleSchema.optional() },
    expecting("must be an object with connection, auth, and kv or static_role"),
  )
  .superRefine((settings, context) => {
    if ((settings.kv === undefined) === (settings.static_role === undefined)) {
      context.addIssue({
        code: "custom",
        path: [settings.kv === undefined ? "kv" : "static_role"],
        message: "a static Vault secret needs exactly one of kv (a KV v2 secret) or static_role (a database static role)",
      });
    }
  });

export const dynamicSettingsSchema = z.strictObject(
  { connection: connectionSchema, auth: authSchema, database: databaseSchema },
  expecting("must be an object with connection, auth and database"),
);
