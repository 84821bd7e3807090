import type { SecretRef, VersionRef } from "../contract.js";
import { InvalidSecretValue, UpstreamNotFound, UpstreamRejected, UpstreamUnavailable } from "../errors.js";
import { valueContext } from "../local/local-adapter.js";
import { SealedValueRejected, type ValueSealer } from "../local/value-sealer.js";
import type { RoleLogin } from "./role-login.js";
import { SASLPREP_NEUTRAL_PASSWORD } from "./scram-verifier.js";

/** Version ids of static PostgreSQL secrets: a counter from 1, as the local adapter counts. */
const VERSION_PATTERN = /^[1-9][0-9]*$/;
export const FIRST_VERSION = "1";
/** Minimum length of a password that an operator gives. */
export const MIN_GIVEN_PASSWORD_LENGTH = 16;
/**
 * Maximum length of a password that an operator gives. PostgreSQL receives only the
 * SCRAM secret, whose size does not depend on the password, so this bounds the PBKDF2 input.
 */
export const MAX_GIVEN_PASSWORD_LENGTH = 1024;
/** Fields an operator-supplied value may have. */
const VALUE_FIELDS = new Set(["username", "password"]);

/** Returns the version after `current`: "1" for the first one. */
export function nextVersion(secret: SecretRef, current: VersionRef | null): string {
  if (!current) {
    return FIRST_VERSION;
  }
  if (!VERSION_PATTERN.test(current.version)) {
    throw new UpstreamRejected(`current version '${current.version}' of secret ${secret.name} is not a version counter such as 1 or 2`);
  }
  return String(BigInt(current.version) + 1n);
}

/** Seals a version's value, `{"username", "password"}`, bound to the secret id and version. */
export function sealRoleLogin(sealer: ValueSealer, secret: SecretRef, version: string, login: RoleLogin): Promise<string> {
  const value = { username: login.username, password: login.password };
  return sealer.seal(Buffer.from(JSON.stringify(value), "utf8"), valueContext(secret.id, version));
}

/**
 * Opens the stored value of `version`. When `roleName` is given, the value must belong
 * to that role, so that a version stored before `role.name` changed is never set on
 * another role. Messages name the secret and version, never the value.
 */
export async function openRoleLogin(sealer: ValueSealer, secret: SecretRef, version: VersionRef, roleName?: string): Promise<RoleLogin> {
  const label = `stored value of secret ${secret.name} version ${version.version}`;
  if (version.sealedValue === null) {
    throw new UpstreamNotFound(`secret ${secret.name} version ${version.version} has no stored value`);
  }

  let plaintext: Buffer;
  try {
    plaintext = await sealer.open(version.sealedValue, valueContext(secret.id, version.version));
  } catch (error) {
    if (error instanceof SealedValueRejected) {
      throw new UpstreamRejected(
        `${label} failed its integrity check; it was altered or copied from another secret or version, so rotate the secret with a new value`,
        { cause: error },
      );
    }
    throw new UpstreamUnavailable(`cannot open the ${label}: the broker's data keys are unavailable`, { cause: error });
  }

  const login = parseRoleLogin(plaintext.toString("utf8"));
  if (!login) {
    throw new UpstreamRejected(`${label} is not a JSON object with string fields username and password`);
  }
  if (roleName !== undefined && login.username !== roleName) {
    throw new UpstreamRejected(
      `${label} belongs to role ${login.username}, but role.name is ${roleName}; ` +
        `rotate the secret with value {"password": ...} set to the current password of ${roleName}`,
    );
  }
  return login;
}

/**
 * Checks an operator-supplied value and returns its password. The value has a
 * `password` of MIN_GIVEN_PASSWORD_LENGTH to MAX_GIVEN_PASSWORD_LENGTH printable ASCII
 * characters, which the SCRAM verifier takes unchanged, and optionally a `username`
 * equal to `roleName`. Messages name fields, never values.
 */
export function givenPassword(secret: SecretRef, roleName: string, value: unknown, isFirstVersion: boolean): string {
  const of = `value of secret ${secret.name}`;
  // The first value is the role's existing password, which only ALTER ROLE changes.
  const fix = isFirstVersion ? `; the first value is the current password of role ${roleName}, so set such a password with ALTER ROLE first` : "";
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidSecretValue(null, `${of} must be an object such as {"password": ...}`);
  }

  const fields = value as Record<string, unknown>;
  const unknownFields = Object.keys(fields).filter((field) => !VALUE_FIELDS.has(field));
  if (unknownFields.length > 0) {
    throw new InvalidSecretValue(unknownFields[0]!, `${of} has unknown field(s) ${unknownFields.join(", ")}; give only password, and optionally username`);
  }
  if (fields["username"] !== undefined && fields["username"] !== roleName) {
    throw new InvalidSecretValue("username", `username in ${of} differs from role.name ${roleName}; leave username out or set it to ${roleName}`);
  }

  const password = fields["password"];
  if (typeof password !== "string") {
    throw new InvalidSecretValue("password", `${of} must have a string field password`);
  }
  if (password.length < MIN_GIVEN_PASSWORD_LENGTH) {
    throw new InvalidSecretValue("password", `password in ${of} must be at least ${MIN_GIVEN_PASSWORD_LENGTH} characters long${fix}`);
  }
  if (password.length > MAX_GIVEN_PASSWORD_LENGTH) {
    throw new InvalidSecretValue("password", `password in ${of} must be at most ${MAX_GIVEN_PASSWORD_LENGTH} characters long${fix}`);
  }
  if (!SASLPREP_NEUTRAL_PASSWORD.test(password)) {
    throw new InvalidSecretValue("password", `password in ${of} must contain only printable ASCII characters, from space to ~${fix}`);
  }
  return password;
}

function parseRoleLogin(text: string): RoleLogin | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) {
    return undefined;
  }
  const { username, password } = parsed as Record<string, unknown>;
  return typeof username === "string" && typeof password === "string" ? { username, password } : undefined;
}
