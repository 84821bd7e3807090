import { randomUUID } from "node:crypto";
import { invalidParameter, resourceNotFound } from "./standin-error.js";
import { epochSeconds } from "./standin-read-operations.js";
import { AWSCURRENT, type NewValue, type StandinStore } from "./standin-store.js";

type Input = Record<string, any>;

/** Reads SecretString or SecretBinary; exactly one of them is required. */
function valueOf(input: Input): NewValue {
  const hasString = typeof input["SecretString"] === "string";
  const hasBinary = typeof input["SecretBinary"] === "string";
  if (hasString === hasBinary) {
    throw invalidParameter("You must provide either SecretString or SecretBinary, but not both.");
  }
  return hasString ? { secretString: input["SecretString"] } : { secretBinary: input["SecretBinary"] };
}

/**
 * CreateSecret, with a first version labelled AWSCURRENT when a value is given.
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html
 */
export function createSecret(store: StandinStore, input: Input) {
  const name = input["Name"];
  if (typeof name !== "string" || name === "") {
    throw invalidParameter("Name is required.");
  }
  const hasValue = input["SecretString"] !== undefined || input["SecretBinary"] !== undefined;
  const secret = store.create(name, hasValue ? valueOf(input) : undefined, input["ClientRequestToken"], {
    description: input["Description"],
    tags: input["Tags"] ?? [],
  });
  const current = store.withStage(secret, AWSCURRENT);
  return { ARN: secret.arn, Name: secret.name, VersionId: current?.versionId };
}

/**
 * PutSecretValue. Without VersionStages the new version gets AWSCURRENT. The
 * ClientRequestToken becomes the VersionId; the SDK fills in a UUID when it is absent.
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
 */
export function putSecretValue(store: StandinStore, input: Input) {
  const secret = store.find(input["SecretId"]);
  const stages: string[] = input["VersionStages"] ?? [AWSCURRENT];
  const version = store.put(secret, valueOf(input), input["ClientRequestToken"] ?? randomUUID(), stages);
  return { ARN: secret.arn, Name: secret.name, VersionId: version.versionId, VersionStages: [...version.stages] };
}

/**
 * UpdateSecretVersionStage. A label attached to another version moves only when
 * RemoveFromVersionId names that version; AWSCURRENT can be moved but not removed, and
 * moving it moves AWSPREVIOUS to the version it left.
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html
 */
export function updateSecretVersionStage(store: StandinStore, input: Input) {
  const secret = store.find(input["SecretId"]);
  const stage = input["VersionStage"];
  const moveTo: string | undefined = input["MoveToVersionId"];
  const removeFrom: string | undefined = input["RemoveFromVersionId"];
  if (typeof stage !== "string" || stage === "") {
    throw invalidParameter("VersionStage is required.");
  }
  if (moveTo === undefined && removeFrom === undefined) {
    throw invalidParameter("You must specify MoveToVersionId, RemoveFromVersionId or both.");
  }

  const holder = store.withStage(secret, stage);
  if (removeFrom !== undefined && holder?.versionId !== removeFrom) {
    throw invalidParameter(`The staging label ${stage} is not attached to version ${removeFrom}.`);
  }
  if (moveTo === undefined) {
    if (stage === AWSCURRENT) {
      throw invalidParameter("You can't remove the staging label AWSCURRENT; move it to another version instead.");
    }
    holder!.stages.delete(stage);
    return { ARN: secret.arn, Name: secret.name };
  }

  const target = secret.versions.get(moveTo);
  if (!target) {
    throw resourceNotFound(`Secrets Manager can't find the specified secret value for VersionId: ${moveTo}`);
  }
  if (holder && holder !== target && removeFrom === undefined) {
    throw invalidParameter(`The staging label ${stage} is currently attached to version ${holder.versionId}, so you must specify RemoveFromVersionId.`);
  }
  store.attach(secret, stage, target);
  if (stage === AWSCURRENT) {
    secret.lastRotatedDate = new Date();
  }
  return { ARN: secret.arn, Name: secret.name };
}

/**
 * DeleteSecret: marks the secret for deletion, or removes it at once with ForceDeleteWithoutRecovery.
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html
 */
export function deleteSecret(store: StandinStore, input: Input) {
  const secret = store.find(input["SecretId"], { allowDeleted: true });
  const now = new Date();
  if (input["ForceDeleteWithoutRecovery"] === true) {
    store.secrets.delete(secret.name);
    return { ARN: secret.arn, Name: secret.name, DeletionDate: epochSeconds(now) };
  }
  const days: number = input["RecoveryWindowInDays"] ?? 30;
  secret.deletedDate = now;
  return { ARN: secret.arn, Name: secret.name, DeletionDate: epochSeconds(new Date(now.getTime() + days * 86_400_000)) };
}
