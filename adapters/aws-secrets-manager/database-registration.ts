import type { GetSecretValueCommandOutput } from "@aws-sdk/client-secrets-manager";
import type { SecretData } from "../contract.js";
import { InvalidAdapterSettings } from "../errors.js";
import type { ConnectionPools } from "../postgres/connection-pools.js";
import { prepareCall } from "../postgres/prepare-call.js";
import { rotatableRoleProblem } from "../postgres/static-role-rotation.js";
import type { AwsCall } from "./aws-call.js";
import { databaseCall, readRoleValue } from "./database-rotation.js";

/**
 * Code with which the broker's local secret reader rejects a name that no live local
 * static secret has (`invalid_state`), as opposed to a failure to read one.
 */
const MISSING_LOCAL_SECRET_CODE = "invalid_state";

/**
 * Checks a database secret's settings when it is registered, so that a rotation does
 * not find them wrong later. The AWSCURRENT value must have the `username` of
 * `database.role.name` and a `password`. `database.connection.password_secret` must
 * name a local secret with the admin password in `password_field`. The role must exist
 * and be rotatable: neither a superuser nor the admin role. Each problem is an
 * `InvalidAdapterSettings` naming the setting; a server that cannot be reached is an
 * upstream error as for a rotation.
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
