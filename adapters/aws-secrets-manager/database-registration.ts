import type { GetSecretValueCommandOutput } from "@aws-sdk/client-secrets-manager";
import type { SecretData } from "../contract.js";
import { InvalidAdapterSettings } from "../errors.js";
import type { ConnectionPools } from "../postgres/connection-pools.js";
import { prepareCall } from "../postgres/prepare-call.js";
import { alterableRoleProblem, rotatableRoleProblem } from "../postgres/static-role-rotation.js";
import type { AwsCall } from "./aws-call.js";
import { databaseCall, isAlternating, readRoleValue } from "./database-rotation.js";

/**
 * Code with which the broker's local secret reader rejects a name that no live local
 * static secret has (`invalid_state`), as opposed to a failure to read one.
 */
const MISSING_LOCAL_SECRET_CODE = "invalid_state";

/**
 * Checks a database secret's settings when it is registered, so that a rotation does
 * not find them wrong later. The AWSCURRENT value must have a `password` and the
 * `username` of `database.role.name` (or, with alternating users, of `clone_username`).
 * `database.connection.password_secret` must name a local secret with the admin
 * password in `password_field`. The role must exist and be rotatable: neither a superuser nor the admin role. With alternating users the
 * clone role must be rotatable too, and the admin must be allowed to set its password.
 * Each problem is an `InvalidAdapterSettings` naming the setting; a server that cannot
 * be reached is an upstream error as for a rotation.
 */
export async function checkDatabaseRegistration(pools: ConnectionPools, aws: AwsCall, current: GetSecretValueCommandOutput): Promise<void> {
  const value = readRoleValue(aws, current);
  if ("reason" in value) {
    throw new InvalidAdapterSettings([{ name: value.setting, reason: value.reason }]);
  }

  await requireAdminPassword(aws);
  const call = databaseCall(aws);
  const roleProblem = await rotatableRoleProblem(call, await prepareCall(pools, call, "static"));
  if (roleProblem !== null) {
    throw new InvalidAdapterSettings([{ name: "database.role.name", reason: roleProblem.message }]);
  }
  if (isAlternating(aws)) {
    await checkCloneRole(pools, aws);
  }
}

/**
 * Checks that the clone role exists, is rotatable, and that the admin may set its password.
 * NOTE: its privileges are not compared with the first role's, so a clone that lacks some
 * passes here and fails in the workloads after the rotation that makes it current.
 */
async function checkCloneRole(pools: ConnectionPools, aws: AwsCall): Promise<void> {
  const call = databaseCall(aws, aws.settings.clone_username);
  const prepared = await prepareCall(pools, call, "static");
  const problem = (await rotatableRoleProblem(call, prepared, "clone_username")) ?? (await alterableRoleProblem(call, prepared));
  if (problem !== null) {
    throw new InvalidAdapterSettings([{ name: "clone_username", reason: problem.message }]);
  }
}

/** Reads the admin password from its local secret; a missing secret or field is an `InvalidAdapterSettings` naming the setting. */
async function requireAdminPassword(aws: AwsCall): Promise<void> {
  const connection = aws.settings.database!.connection;
  let admin: SecretData;
  try {
    admin = await aws.call.readLocalSecret(connection.password_secret);
  } catch (error) {
    if ((error as { code?: unknown }).code !== MISSING_LOCAL_SECRET_CODE) {
      throw error;
    }
    throw new InvalidAdapterSettings([
      {
        name: "database.connection.password_secret",
        reason: `names no local static secret with a current version ('${connection.password_secret}'); create it with adapter local and the admin password, or correct the name`,
      },
    ]);
  }
  const password = admin[connection.password_field];
  if (typeof password !== "string" || password === "") {
    throw new InvalidAdapterSettings([
      { name: "database.connection.password_field", reason: `local secret ${connection.password_secret} has no field ${connection.password_field}; store the admin password there or correct password_field` },
    ]);
  }
}
