import type { GetSecretValueCommandOutput } from "@aws-sdk/client-secrets-manager";
import type { SecretData } from "../contract.js";
import { UpstreamRejected } from "../errors.js";

/** Field of `data` for a SecretString that is not a JSON object. */
export const STRING_FIELD = "value";
/** Field of `data` for a SecretBinary, base64-encoded. */
export const BINARY_FIELD = "value_base64";

/**
 * Converts a version's value to the fields handed to a workload. A SecretString that is
 * a JSON object gives one field per member: strings as they are, other members as
 * their JSON text (a port 5432 becomes "5432"). Any other SecretString is field `value`,
 * and a SecretBinary is field `value_base64`.
 */
export function toSecretData(output: Pick<GetSecretValueCommandOutput, "SecretString" | "SecretBinary">): SecretData {
  if (output.SecretString !== undefined) {
    const object = parseObject(output.SecretString);
    if (!object) {
      return { [STRING_FIELD]: output.SecretString };
    }
    return Object.fromEntries(Object.entries(object).map(([field, member]) => [field, typeof member === "string" ? member : JSON.stringify(member)]));
  }
  if (output.SecretBinary !== undefined) {
    return { [BINARY_FIELD]: Buffer.from(output.SecretBinary).toString("base64") };
  }
  return {};
}

/** Returns the members of a JSON object text, or undefined when the text is not one. */
export function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Builds the SecretString of a new version from the current one. In a JSON object,
 * `field` gets `newValue` and other members keep their JSON types. A plain string is
 * replaced as a whole, and a binary secret is rejected.
 */
export function replaceField(secretName: string, current: Pick<GetSecretValueCommandOutput, "SecretString" | "SecretBinary">, field: string, newValue: string): string {
  if (current.SecretString === undefined) {
    throw new UpstreamRejected(`secret ${secretName} has a binary value in AWS; the broker rotates only SecretString values, so give the new value with the rotation`);
  }
  const object = parseObject(current.SecretString);
  if (object && !(field in object)) {
    // A generated value in a new field would leave the credential the application uses unchanged.
    throw new UpstreamRejected(
      `generate.field '${field}' of secret ${secretName} is not a field of its JSON value in AWS, whose fields are ${Object.keys(object).join(", ")}; set generate.field to the field that holds the credential (PATCH /v1/secrets/{id})`,
    );
  }
  return object ? JSON.stringify({ ...object, [field]: newValue }) : newValue;
}

/** Encodes an operator-given value: the single field `value` as a plain string, anything else as a JSON object. */
export function encodeGivenValue(value: SecretData): string {
  const fields = Object.keys(value);
  return fields.length === 1 && fields[0] === STRING_FIELD ? value[STRING_FIELD]! : JSON.stringify(value);
}
