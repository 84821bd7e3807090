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
 * password (ALTER ROLE with a SCRAM verifier) and checks the login. With the
 * `alternating_users` strategy the new value names the role that is not in `current`,
 * `database.role.name` or `clone_username`, so the current login keeps working.
 */
export function newDatabaseValue(aws: AwsCall, current: GetSecretValueCommandOutput): string {
  const login = roleLoginOf(aws, current);
  if (!isAlternating(aws)) {
    return replaceField(aws.context.secretName, current, PASSWORD_FIELD, newPassword());
  }
  const fields = parseObject(current.SecretString!)!;
  return JSON.stringify({ ...fields, [USERNAME_FIELD]: otherRole(aws, login.username), [PASSWORD_FIELD]: newPassword() });
}

/** Sets the password of the role in `value` to the one in `value`. */
export async function setDatabasePassword(pools: ConnectionPools, aws: AwsCall, value: GetSecretValueCommandOutput): Promise<void> {
  const login = roleLoginOf(aws, value);
  await setStaticRolePassword(pools, databaseCall(aws, login.username), login);
}

/**
 * Gives the role of `retired` a random password that is never stored, so that its login
 * stops working, unless `current` names the same role (the single-user case, where the
 * set step already replaced the password). Repeating it only draws another password.
 */
export async function retireDatabaseRole(
  pools: ConnectionPools,
  aws: AwsCall,
  retired: GetSecretValueCommandOutput,
  current: GetSecretValueCommandOutput,
): Promise<void> {
  const roleName = roleLoginOf(aws, retired).username;
  if (roleName === roleLoginOf(aws, current).username) {
    return;
  }
  await setStaticRolePassword(pools, databaseCall(aws, roleName), { username: roleName, password: newPassword() });
}

/** Logs in as the role with the password in `value`, on a new connection. */
export async function checkDatabaseLogin(aws: AwsCall, value: GetSecretValueCommandOutput, connectTimeoutSeconds: number): Promise<void> {
  const login = roleLoginOf(aws, value);
  const call = databaseCall(aws, login.username);
  const { settings, context } = callSettings(call, "static");
  try {
    await checkRoleLogin(settings.connection, login, call.signal, connectTimeoutSeconds);
  } catch (error) {
    throw roleLoginError(error, context, login.username, "new");
  }
}

/**
 * Copies the adapter call with the database settings in place of the AWS ones, as the
 * PostgreSQL adapter's functions read them. `roleName` replaces `database.role.name`,
 * for calls about the clone role of the alternating-users strategy.
 */
export function databaseCall(aws: AwsCall, roleName?: string): AdapterCall {
  const settings = database(aws);
  const role = roleName === undefined ? settings.role : { ...settings.role, name: roleName };
  return { ...aws.call, secret: { ...aws.call.secret, settings: { ...settings, role } as unknown as Record<string, unknown> } };
}

export function isAlternating(aws: AwsCall): boolean {
  return aws.settings.rotation_strategy === "alternating_users";
}

function database(aws: AwsCall): PostgresStaticSettings {
  if (aws.settings.database === undefined) {
    throw new Error(`secret ${aws.context.secretName} has no database settings`);
  }
  return aws.settings.database;
}

/** Returns the roles a value's username may name: `database.role.name`, and `clone_username` with alternating users. */
function rotatedRoles(aws: AwsCall): string[] {
  const roleName = database(aws).role.name;
  return isAlternating(aws) ? [roleName, aws.settings.clone_username!] : [roleName];
}

function otherRole(aws: AwsCall, roleName: string): string {
  return rotatedRoles(aws).find((name) => name !== roleName)!;
}

/** A version's role login, or the setting that does not fit the value and why. */
export type RoleValue = { login: RoleLogin } | { setting: "database" | "database.role.name"; reason: string };

/**
 * Reads username and password from a version's JSON value. The username must be one of
 * the rotated roles; a value without one is taken to name `database.role.name`.
 */
export function readRoleValue(aws: AwsCall, value: GetSecretValueCommandOutput): RoleValue {
  const roles = rotatedRoles(aws);
  const of = `value of AWS secret ${aws.context.secretId} version ${value.VersionId ?? "(new)"}`;
  const fields = value.SecretString === undefined ? undefined : parseObject(value.SecretString);
  if (!fields) {
    return { setting: "database", reason: `${of} is not a JSON object; a database secret has fields ${USERNAME_FIELD} and ${PASSWORD_FIELD}` };
  }
  const username = fields[USERNAME_FIELD] ?? roles[0];
  if (typeof username !== "string" || !roles.includes(username)) {
    const expected = roles.length === 1 ? `database.role.name ${roles[0]}` : `database.role.name ${roles[0]} or clone_username ${roles[1]}`;
    return { setting: "database.role.name", reason: `${of} has a ${USERNAME_FIELD} other than ${expected}; correct one of them` };
  }
  const password = fields[PASSWORD_FIELD];
  if (typeof password !== "string" || password === "") {
    return { setting: "database", reason: `${of} has no string field ${PASSWORD_FIELD}` };
  }
  return { login: { username, password } };
}

function roleLoginOf(aws: AwsCall, value: GetSecretValueCommandOutput): RoleLogin {
  const checked = readRoleValue(aws, value);
  if ("reason" in checked) {
    throw new UpstreamRejected(checked.reason);
  }
  return checked.login;
}
