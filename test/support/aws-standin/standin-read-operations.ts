import { invalidParameter, resourceNotFound } from "./standin-error.js";
import { AWSCURRENT, type StandinStore, type StoredSecret, type StoredVersion } from "./standin-store.js";

type Input = Record<string, any>;
const MAX_RESULTS = 100;

/** Dates go over the wire as epoch seconds, fractions allowed. */
export function epochSeconds(date: Date | undefined): number | undefined {
  return date === undefined ? undefined : date.getTime() / 1000;
}

/**
 * GetSecretValue: by VersionId, by VersionStage, or AWSCURRENT when neither is given;
 * both given must name the same version.
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
 */
export function getSecretValue(store: StandinStore, input: Input) {
  const secret = store.find(input["SecretId"]);
  const version = findVersion(store, secret, input["VersionId"], input["VersionStage"]);
  return {
    ARN: secret.arn,
    Name: secret.name,
    VersionId: version.versionId,
    SecretString: version.secretString,
    SecretBinary: version.secretBinary,
    VersionStages: [...version.stages],
    CreatedDate: epochSeconds(version.createdDate),
  };
}

function findVersion(store: StandinStore, secret: StoredSecret, versionId: unknown, stage: unknown): StoredVersion {
  if (versionId !== undefined) {
    const version = secret.versions.get(String(versionId));
    if (!version || (stage !== undefined && !version.stages.has(String(stage)))) {
      throw resourceNotFound(`Secrets Manager can't find the specified secret value for VersionId: ${String(versionId)}`);
    }
    return version;
  }
  const label = stage === undefined ? AWSCURRENT : String(stage);
  const version = store.withStage(secret, label);
  if (!version) {
    throw resourceNotFound(`Secrets Manager can't find the specified secret value for staging label: ${label}`);
  }
  return version;
}

/**
 * DescribeSecret: metadata, rotation configuration and VersionIdsToStages, never a value.
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html
 */
export function describeSecret(store: StandinStore, input: Input) {
  const secret = store.find(input["SecretId"], { allowDeleted: true });
  return { ...secretEntry(store, secret), VersionIdsToStages: store.versionIdsToStages(secret) };
}

function secretEntry(store: StandinStore, secret: StoredSecret) {
  return {
    ARN: secret.arn,
    Name: secret.name,
    Description: secret.description,
    RotationEnabled: secret.rotationEnabled,
    RotationLambdaARN: secret.rotationLambdaArn,
    RotationRules: secret.rotationRules,
    LastRotatedDate: epochSeconds(secret.lastRotatedDate),
    LastChangedDate: epochSeconds(secret.lastChangedDate),
    DeletedDate: epochSeconds(secret.deletedDate),
    CreatedDate: epochSeconds(secret.createdDate),
    Tags: secret.tags,
  };
}

/**
 * ListSecrets with Filters (name, description, tag-key and tag-value match by prefix;
 * a value starting with ! negates it) and NextToken paging, MaxResults 1 to 100.
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ListSecrets.html
 */
export function listSecrets(store: StandinStore, input: Input) {
  const maxResults = pageSize(input["MaxResults"]);
  const filters: { Key: string; Values: string[] }[] = input["Filters"] ?? [];
  const matching = [...store.secrets.values()]
    .filter((secret) => !secret.deletedDate || input["IncludePlannedDeletion"] === true)
    .filter((secret) => filters.every((filter) => matchesFilter(secret, filter)))
    .sort((left, right) => left.createdDate.getTime() - right.createdDate.getTime() || left.name.localeCompare(right.name));
  const start = offsetOf(input["NextToken"]);
  const page = matching.slice(start, start + maxResults);
  const next = start + maxResults < matching.length ? Buffer.from(String(start + maxResults)).toString("base64") : undefined;
  return {
    SecretList: page.map((secret) => ({ ...secretEntry(store, secret), SecretVersionsToStages: store.versionIdsToStages(secret) })),
    NextToken: next,
  };
}

function matchesFilter(secret: StoredSecret, filter: { Key: string; Values: string[] }): boolean {
  const candidates: Record<string, string[]> = {
    name: [secret.name],
    description: secret.description ? [secret.description] : [],
    "tag-key": secret.tags.map((tag) => tag.Key),
    "tag-value": secret.tags.map((tag) => tag.Value),
  };
  const fields = filter.Key === "all" ? Object.values(candidates).flat() : candidates[filter.Key];
  if (!fields) {
    throw invalidParameter(`Invalid filter key: ${filter.Key}`);
  }
  return filter.Values.some((value) =>
    value.startsWith("!") ? !fields.some((field) => field.startsWith(value.slice(1))) : fields.some((field) => field.startsWith(value)),
  );
}

/**
 * ListSecretVersionIds: labelled versions, and deprecated ones when IncludeDeprecated is true.
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ListSecretVersionIds.html
 */
export function listSecretVersionIds(store: StandinStore, input: Input) {
  const secret = store.find(input["SecretId"]);
  const maxResults = pageSize(input["MaxResults"]);
  const versions = [...secret.versions.values()].filter((version) => version.stages.size > 0 || input["IncludeDeprecated"] === true);
  const start = offsetOf(input["NextToken"]);
  return {
    ARN: secret.arn,
    Name: secret.name,
    Versions: versions.slice(start, start + maxResults).map((version) => ({
      VersionId: version.versionId,
      VersionStages: [...version.stages],
      CreatedDate: epochSeconds(version.createdDate),
    })),
    NextToken: start + maxResults < versions.length ? Buffer.from(String(start + maxResults)).toString("base64") : undefined,
  };
}

function pageSize(value: unknown): number {
  if (value === undefined) {
    return MAX_RESULTS;
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_RESULTS) {
    throw invalidParameter(`MaxResults must be an integer from 1 to ${MAX_RESULTS}.`);
  }
  return value;
}

function offsetOf(token: unknown): number {
  if (token === undefined) {
    return 0;
  }
  const offset = Number(Buffer.from(String(token), "base64").toString("utf8"));
  if (!Number.isInteger(offset) || offset < 0) {
    throw invalidParameter("The NextToken value is invalid.");
  }
  return offset;
}
