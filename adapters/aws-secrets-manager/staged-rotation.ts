import type { CreatePendingRequest, PendingVersion, VersionRef } from "../contract.js";
import { UpstreamConflict, UpstreamRejected } from "../errors.js";
import type { AwsCall } from "./aws-call.js";
import { AWSCURRENT, AWSPENDING, describeSecret, getSecretValue, putPendingValue, updateStage, versionWithStage } from "./aws-operations.js";
import { encodeGivenValue, toSecretData } from "./secret-value.js";
import { requireBrokerRotation } from "./external-rotation.js";

/** Prefix of the ClientRequestToken of a broker rotation; AWS takes 32 to 64 characters and a rotation id has 28. */
const TOKEN_PREFIX = "secrets-broker-";

/** Returns the ClientRequestToken, and so the VersionId, of the version that rotation `rotationId` creates. */
export function rotationToken(rotationId: string): string {
  return `${TOKEN_PREFIX}${rotationId}`;
}

/** Builds the SecretString of a new version from the AWSCURRENT value. */
export type ValueGenerator = (current: Awaited<ReturnType<typeof getSecretValue>>) => string;

/** Checks the AWSCURRENT value and the settings against it before the broker adopts it. */
export type CurrentValueCheck = (current: Awaited<ReturnType<typeof getSecretValue>>) => Promise<void>;

/**
 * Adopts the AWSCURRENT version as the broker's first version when the secret is
 * registered. The value stays in AWS; the broker keeps its VersionId and fingerprint.
 */
export async function adoptCurrentVersion(aws: AwsCall, request: CreatePendingRequest, check: CurrentValueCheck): Promise<PendingVersion> {
  if (request.value !== undefined) {
    throw new UpstreamRejected(`secret ${aws.context.secretName} takes its first version from AWS; leave out value, or rotate the secret to store a new one`);
  }
  const current = await getSecretValue(aws, { stage: AWSCURRENT });
  await check(current);
  return { version: current.VersionId!, sealedValue: null, data: toSecretData(current) };
}

/**
 * Rotation step 1: stores the new value as a version labelled AWSPENDING, with the
 * rotation's token as ClientRequestToken so that a retried step creates no second
 * version. AWSPENDING on the AWSCURRENT version is what a finished rotation leaves, so
 * it does not block. AWSPENDING on another version is an unfinished rotation: this
 * rotation's own is resumed, anyone else's stops the step with `UpstreamConflict`.
 */
export async function createPendingVersion(aws: AwsCall, rotationId: string, request: CreatePendingRequest, generate: ValueGenerator): Promise<PendingVersion> {
  const description = await describeSecret(aws);
  requireBrokerRotation(aws, description);

  const token = rotationToken(rotationId);
  const pendingId = versionWithStage(description, AWSPENDING);
  const currentId = versionWithStage(description, AWSCURRENT);
  if (pendingId !== undefined && pendingId !== currentId) {
    if (pendingId !== token) {
      throw unfinishedRotation(aws, pendingId);
    }
    const resumed = await getSecretValue(aws, { versionId: token, stage: AWSPENDING });
    return { version: token, sealedValue: null, data: toSecretData(resumed) };
  }

  const secretString = request.value === undefined ? generate(await getSecretValue(aws, { stage: AWSCURRENT })) : encodeGivenValue(request.value);
  const version = await putPendingValue(aws, token, secretString);
  return { version, sealedValue: null, data: toSecretData({ SecretString: secretString }) };
}

/** Rotation step 3, first half: reads AWSPENDING and checks that it is still on the rotation's version. */
export async function readPendingVersion(aws: AwsCall, pending: VersionRef): Promise<Awaited<ReturnType<typeof getSecretValue>>> {
  const value = await getSecretValue(aws, { stage: AWSPENDING });
  if (value.VersionId !== pending.version) {
    throw new UpstreamConflict(
      `AWSPENDING of AWS secret ${aws.context.secretId} is on version ${value.VersionId}, not on version ${pending.version} of this rotation; ` +
        "another rotation changed the labels, so this one stops",
    );
  }
  return value;
}

/**
 * Rotation step 4: moves AWSCURRENT to the pending version; AWS moves AWSPREVIOUS to the
 * version it left. A step retried after it succeeded finds AWSCURRENT moved and does nothing.
 * AWSPENDING stays on the new AWSCURRENT version, which counts as a finished rotation.
 */
export async function promotePendingVersion(aws: AwsCall, pending: VersionRef): Promise<void> {
  const currentId = versionWithStage(await describeSecret(aws), AWSCURRENT);
  if (currentId === pending.version) {
    return;
  }
  await updateStage(aws, AWSCURRENT, { moveTo: pending.version, removeFrom: currentId });
}

/**
 * Rollback: moves AWSCURRENT back to `current` when the finish step had already moved it,
 * then takes AWSPENDING off the pending version, which is left without labels (deprecated).
 * NOTE: after a move back, AWS puts AWSPREVIOUS on the discarded version; the version
 * that had AWSPREVIOUS before the rotation is not labelled again.
 */
export async function discardPendingVersion(aws: AwsCall, pending: VersionRef, current: VersionRef | null): Promise<void> {
  const description = await describeSecret(aws);
  if (current !== null && versionWithStage(description, AWSCURRENT) === pending.version) {
    await updateStage(aws, AWSCURRENT, { moveTo: current.version, removeFrom: pending.version });
  }
  if (versionWithStage(description, AWSPENDING) === pending.version) {
    await updateStage(aws, AWSPENDING, { removeFrom: pending.version });
  }
}

function unfinishedRotation(aws: AwsCall, pendingId: string): UpstreamConflict {
  const { secretId, secretName } = aws.context;
  return new UpstreamConflict(
    `AWS secret ${secretId} of secret ${secretName} has AWSPENDING on version ${pendingId}, which is neither AWSCURRENT nor this rotation's version, ` +
      "so another rotation is unfinished; finish it, or remove the label with " +
      `aws secretsmanager update-secret-version-stage --secret-id ${secretId} --version-stage AWSPENDING --remove-from-version-id ${pendingId}, then rotate again`,
  );
}
