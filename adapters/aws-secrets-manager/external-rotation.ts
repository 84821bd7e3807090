import type { DescribeSecretCommandOutput } from "@aws-sdk/client-secrets-manager";
import type { UpstreamRotation } from "../contract.js";
import { RotatedUpstream } from "../errors.js";
import type { AwsCall } from "./aws-call.js";
import { describeSecret } from "./aws-operations.js";

/**
 * Stops a broker rotation of a secret that AWS rotates itself (RotationEnabled with a
 * rotation Lambda), so that the secret is not rotated twice.
 */
export function requireBrokerRotation(aws: AwsCall, description: DescribeSecretCommandOutput): void {
  const lambda = rotationLambda(description);
  if (lambda !== null) {
    throw new RotatedUpstream(
      `AWS secret ${aws.context.secretId} is rotated by AWS Lambda ${lambda}, so the broker does not rotate it; ` +
        "rotate it in AWS, or turn off its rotation there before rotating through the broker",
      lambda,
    );
  }
}

/**
 * Reads the secret's rotation configuration with DescribeSecret: RotationEnabled, the
 * rotation Lambda and RotationRules. A rule of AutomaticallyAfterDays only is shown as
 * `rate(N days)`, the form AWS also accepts.
 */
export async function describeAwsRotation(aws: AwsCall): Promise<UpstreamRotation> {
  const description = await describeSecret(aws);
  const rules = description.RotationRules;
  const schedule = rules?.ScheduleExpression ?? (rules?.AutomaticallyAfterDays === undefined ? null : `rate(${rules.AutomaticallyAfterDays} days)`);
  return {
    enabled: rotationLambda(description) !== null,
    rotator: rotationLambda(description),
    schedule,
    window: rules?.Duration ?? null,
    lastRotatedAt: description.LastRotatedDate ?? null,
    nextRotationAt: description.NextRotationDate ?? null,
  };
}

function rotationLambda(description: DescribeSecretCommandOutput): string | null {
  return description.RotationEnabled === true && description.RotationLambdaARN ? description.RotationLambdaARN : null;
}
