import {
  DescribeSecretCommand,
  type DescribeSecretCommandOutput,
  GetSecretValueCommand,
  type GetSecretValueCommandOutput,
  PutSecretValueCommand,
  UpdateSecretVersionStageCommand,
} from "@aws-sdk/client-secrets-manager";
import type { AwsCall } from "./aws-call.js";
import { type AwsSecretSettings, parseAwsSettings } from "./aws-settings.js";

export const AWSCURRENT = "AWSCURRENT";
export const AWSPENDING = "AWSPENDING";

/** Reads one version's value, by VersionId or by staging label. */
export function getSecretValue(aws: AwsCall, version: { versionId?: string; stage?: string }): Promise<GetSecretValueCommandOutput> {
  return aws.run("GetSecretValue", (client, options) =>
    client.send(new GetSecretValueCommand({ SecretId: aws.settings.secret_id, VersionId: version.versionId, VersionStage: version.stage }), options),
  );
}

/** Reads the secret's metadata: rotation configuration and the staging labels of each version. */
export function describeSecret(aws: AwsCall): Promise<DescribeSecretCommandOutput> {
  return aws.run("DescribeSecret", (client, options) => client.send(new DescribeSecretCommand({ SecretId: aws.settings.secret_id }), options));
}

/** Stores a new version under `token` with only the label AWSPENDING, so that AWSCURRENT stays where it is. */
export async function putPendingValue(aws: AwsCall, token: string, secretString: string): Promise<string> {
  const output = await aws.run("PutSecretValue", (client, options) =>
    client.send(new PutSecretValueCommand({ SecretId: aws.settings.secret_id, ClientRequestToken: token, SecretString: secretString, VersionStages: [AWSPENDING] }), options),
  );
  return output.VersionId ?? token;
}

/** Moves or removes a staging label with UpdateSecretVersionStage. */
export async function updateStage(aws: AwsCall, stage: string, change: { moveTo?: string; removeFrom?: string }): Promise<void> {
  await aws.run("UpdateSecretVersionStage", (client, options) =>
    client.send(
      new UpdateSecretVersionStageCommand({ SecretId: aws.settings.secret_id, VersionStage: stage, MoveToVersionId: change.moveTo, RemoveFromVersionId: change.removeFrom }),
      options,
    ),
  );
}

/** Returns the VersionId that has `stage` in DescribeSecret's VersionIdsToStages, if any. */
export function versionWithStage(description: DescribeSecretCommandOutput, stage: string): string | undefined {
  const entries = Object.entries(description.VersionIdsToStages ?? {});
  return entries.find(([, stages]) => stages.includes(stage))?.[0];
}

/**
 * Returns the settings with `secret_id` set to the secret's full ARN, as DescribeSecret
 * reports it. The ARN keeps pointing at this secret, so a later secret created under the
 * same name is not taken for it.
 */
export async function resolveSecretArn(aws: AwsCall): Promise<AwsSecretSettings> {
  const description = await describeSecret(aws);
  if (description.ARN === undefined) {
    return aws.settings;
  }
  return parseAwsSettings(aws.call.secret.kind, { ...aws.settings, secret_id: description.ARN });
}
