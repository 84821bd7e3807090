import { AdapterError, UpstreamConflict, UpstreamNotFound, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable } from "../errors.js";

/** Identifiers that error messages include: the broker's secret name and the AWS SecretId, never a value. */
export interface AwsErrorContext {
  secretName: string;
  secretId: string;
  region: string;
}

/** Node socket and DNS errors that mean the endpoint could not be reached. */
const NETWORK_ERROR_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE"]);
/** Errors that mean the request was not signed with valid credentials. */
const CREDENTIAL_ERRORS = new Set(["UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignatureException", "ExpiredTokenException", "CredentialsProviderError", "InvalidClientTokenId"]);
/** Errors that mean the service is busy or failing; the SDK has already retried them. */
const UNAVAILABLE_ERRORS = new Set(["ThrottlingException", "TooManyRequestsException", "InternalServiceError", "InternalFailure", "ServiceUnavailable"]);
/** Messages of AWS errors are at most this long in ours; they name resources, never values. */
const MAX_AWS_MESSAGE_LENGTH = 300;

/**
 * Maps what the AWS SDK threw to an `AdapterError`. The SDK sets an error's `name` to the
 * `__type` of the response, and has already retried throttling, 5xx and network errors
 * (retry.max_attempts). The original error stays as `cause`.
 */
export function toAwsAdapterError(error: unknown, context: AwsErrorContext, action: string): unknown {
  if (error instanceof AdapterError) {
    return error;
  }
  const failure = error as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const name = failure.name ?? "Error";
  const on = `${action} of AWS secret ${context.secretId} in ${context.region} for secret ${context.secretName}`;
  const awsMessage = (failure.message ?? "").slice(0, MAX_AWS_MESSAGE_LENGTH);

  // Node HTTP handler errors keep their socket code but are named TimeoutError when the code is ECONNRESET, EPIPE or ETIMEDOUT.
  if (failure.code !== undefined && NETWORK_ERROR_CODES.has(failure.code)) {
    return new UpstreamUnavailable(`${on} failed: the endpoint could not be reached or closed the connection (${failure.code}); retry later`, { cause: error });
  }
  switch (name) {
    case "ResourceNotFoundException":
      return new UpstreamNotFound(`${on} failed: not found (${awsMessage}); check settings.secret_id and the staging label or version`, { cause: error });
    case "AccessDeniedException":
      return new UpstreamRejected(`${on} was denied (AccessDeniedException); allow the broker's AWS identity secretsmanager:${action} on this secret`, { cause: error });
    case "DecryptionFailure":
      return new UpstreamRejected(`${on} failed: AWS could not decrypt the value with its KMS key (DecryptionFailure); allow the broker's identity kms:Decrypt on that key`, { cause: error });
    case "InvalidRequestException":
    case "InvalidParameterException":
    case "ValidationException":
      return new UpstreamRejected(`${on} was rejected (${name}: ${awsMessage})`, { cause: error });
    case "ResourceExistsException":
      return new UpstreamConflict(`${on} failed: the version already exists with another value (ResourceExistsException)`, { cause: error });
    case "AbortError":
      return new UpstreamTimeout(`${on} did not finish before the broker's adapter timeout; retry later`, { cause: error });
    case "TimeoutError":
      return new UpstreamTimeout(`${on} timed out (settings.timeouts); retry later`, { cause: error });
  }
  if (CREDENTIAL_ERRORS.has(name)) {
    return new UpstreamRejected(`${on} failed: the broker's AWS credentials were not accepted (${name}); check the credential provider chain`, { cause: error });
  }
  if (UNAVAILABLE_ERRORS.has(name) || (failure.$metadata?.httpStatusCode ?? 0) >= 500) {
    return new UpstreamUnavailable(`${on} failed after retries (${name}); retry later`, { cause: error });
  }
  if (failure.$metadata?.httpStatusCode !== undefined) {
    return new UpstreamRejected(`${on} was rejected (${name}: ${awsMessage})`, { cause: error });
  }
  return new UpstreamUnavailable(`${on} failed (${name}); retry later`, { cause: error });
}
