import type { DescribeSecretCommandOutput } from "@aws-sdk/client-secrets-manager";
import { UpstreamConflict } from "../errors.js";
import type { AwsCall } from "./aws-call.js";

/**
 * Stops a broker rotation of a secret that AWS rotates itself (RotationEnabled with a
 * rotation Lambda), so that the secret is not rotated twice.
 */
export function requireBrokerRotation(aws: AwsCall, description: DescribeSecretCommandOutput): void {
  if (description.RotationEnabled === true && description.RotationLambdaARN) {
    throw new UpstreamConflict(
      `AWS secret ${aws.context.secretId} is rotated by AWS Lambda ${description.RotationLambdaARN}, so the broker does not rotate it; ` +
        "rotate it in AWS, or turn off its rotation there before rotating through the broker",
    );
  }
}
