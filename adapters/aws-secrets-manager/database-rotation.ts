import type { GetSecretValueCommandOutput } from "@aws-sdk/client-secrets-manager";
import type { AdapterCall } from "../contract.js";
import { UpstreamRejected } from "../errors.js";
import type { ConnectionPools } from "../postgres/connection-pools.js";
import type { PostgresStaticSettings } from "../postgres/postgres-settings.js";
import { callSettings } from "../postgres/prepare-call.js";
import { newPassword } from "../postgres/role-credentials.js";
import { checkRoleLogin, type RoleLogin, roleLoginError } from "../postgres/role-login.js";
import { setStaticRolePassword } from "../postgres/static-role-rotation.js";
import type { AwsCall } from "./aws-call.js";
import { parseObject, replaceField } from "./secret-value.js";

/** Fields of a database secret's JSON value, as AWS's database secrets name them. */
const USERNAME_FIELD = "username";
const PASSWORD_FIELD = "password";

/**
 * Database secrets: the AWS secret's JSON value has the `username` and `password` of a
 * PostgreSQL login role, named in `settings.database` with the admin connection, as a
 * static PostgreSQL secret's settings have them. The PostgreSQL adapter's code sets the
 * password (ALTER ROLE with a SCRAM verifier) and checks the login.
 */
export function newDatabaseValue(aws: AwsCall, current: GetSecretValueCommandOutput): string {
  roleLoginOf(aws, current);
  return replaceField(aws.context.secretName, current, PASSWORD_FIELD, newPassword());
}

/** Sets the role's password to the one in `value`. */
export async function setDatabasePassword(pools: ConnectionPools, aws: AwsCall, value: GetSecretValueCommandOutput): Promise<void> {
  await setStaticRolePassword(pools, databaseCall(aws), roleLoginOf(aws, value));
}

/** Logs in as the role with the password in `value`, on a new connection. */
export async function checkDatabaseLogin(aws: AwsCall, value: GetSecretValueCommandOutput, connectTimeoutSeconds: number): Promise<void> {
  const call = databaseCall(aws);
  const { settings, context } = callSettings(call, "static");
  const login = roleLoginOf(aws, value);
  try {
    await checkRoleLogin(settings.connection, login, call.signal, connectTimeoutSeconds);
  } catch (error) {
    throw roleLoginError(error, context, login.username, "new");
  }
}

/** Copies the adapter call with the database settings in place of the AWS ones, as the PostgreSQL adapter's functions read them. */
export function databaseCall(aws: AwsCall): AdapterCall {
  return { ...aws.call, secret: { ...aws.call.secret, settings: database(aws) as unknown as Record<string, unknown> } };
}

function database(aws: AwsCall): PostgresStaticSettings {
  if (aws.settings.database === undefined) {
    throw new Error(`secret ${aws.context.secretName} has no database settings`);
  }
  return aws.settings.database;
}

/** A version's role login, or the setting that does not fit the value and why. */
export type RoleValue = { login: RoleLogin } | { setting: "database" | "database.role.name"; reason: string };

/** Reads username and password from a version's JSON value; the username must be the role in `database.role.name`. */
export function readRoleValue(aws: AwsCall, value: GetSecretValueCommandOutput): RoleValue {
  const roleName = database(aws).role.name;
  const of = `value of AWS secret ${aws.context.secretId} version ${value.VersionId ?? "(new)"}`;
  const fields = value.SecretString === undefined ? undefined : parseObject(value.SecretString);
  if (!fields) {
    return { setting: "database", reason: `${of} is not a JSON object; a database secret has fields ${USERNAME_FIELD} and ${PASSWORD_FIELD}` };
  }
  const username = fields[USERNAME_FIELD];
  if (username !== undefined && username !== roleName) {
    return { setting: "database.role.name", reason: `${of} has a ${USERNAME_FIELD} other than database.role.name ${roleName}; correct one of them` };
  }
  const password = fields[PASSWORD_FIELD];
  if (typeof password !== "string" || password === "") {
    return { setting: "database", reason: `${of} has no string field ${PASSWORD_FIELD}` };
  }
  return { login: { username: roleName, password } };
}

function roleLoginOf(aws: AwsCall, value: GetSecretValueCommandOutput): RoleLogin {
  const checked = readRoleValue(aws, value);
  if ("reason" in checked) {
    throw new UpstreamRejected(checked.reason);
  }
  return checked.login;
}
