import { AdapterError, UpstreamConflict, UpstreamNotFound, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable } from "../errors.js";

/** Identifiers that error messages include: the broker's secret name and the AWS SecretId, never a value. */
export interface AwsErrorContext {
  secretName: string;
  secretId: string;
  region: string;
  /** `settings.endpoint`, when it replaces the regional endpoint. */
  endpoint?: string;
}

/** Node socket and DNS errors that mean the endpoint could not be reached. */
const NETWORK_ERROR_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE"]);
/** Node DNS errors: the host name does not resolve. */
const UNKNOWN_HOST_CODES = new Set(["ENOTFOUND", "EAI_AGAIN"]);
/** Errors that mean the request was not signed with valid credentials. */
const CREDENTIAL_ERRORS = new Set(["InvalidSignatureException", "IncompleteSignatureException", "ExpiredTokenException", "CredentialsProviderError"]);
/**
 * Errors AWS returns for an unknown access key, and also for a request to a region that
 * is not enabled for the account (an opt-in region), so both causes are named.
 */
const UNRECOGNIZED_CLIENT_ERRORS = new Set(["UnrecognizedClientException", "InvalidClientTokenId"]);
/** The message of InvalidSignatureException when the signature's region differs from the endpoint's. */
const WRONG_REGION_MESSAGE = /scoped to a valid region/i;
/** The SDK's message when neither the client, the environment nor the shared config sets a region. */
const MISSING_REGION_MESSAGE = "Region is missing";
/** Errors that mean the service is busy or failing; the SDK has already retried them. */
const UNAVAILABLE_ERRORS = new Set(["ThrottlingException", "TooManyRequestsException", "InternalServiceError", "InternalFailure", "ServiceUnavailable"]);
/** Messages of AWS errors are at most this long in ours; they name resources, never values. */
const MAX_AWS_MESSAGE_LENGTH = 300;

/** The members of an SDK or Node error that the mapping reads. */
interface AwsFailure {
  name?: string;
  message?: string;
  code?: string;
  hostname?: string;
  $metadata?: { httpStatusCode?: number };
}

/**
 * Maps what the AWS SDK threw to an `AdapterError`. The SDK sets an error's `name` to the
 * `__type` of the response, and has already retried throttling, 5xx and network errors
 * (retry.max_attempts). The original error stays as `cause`.
 */
export function toAwsAdapterError(error: unknown, context: AwsErrorContext, action: string): unknown {
  if (error instanceof AdapterError) {
    return error;
  }
  const failure = error as AwsFailure;
  const name = failure.name ?? "Error";
  const on = `${action} of AWS secret ${context.secretId} in ${context.region} for secret ${context.secretName}`;
  const awsMessage = (failure.message ?? "").slice(0, MAX_AWS_MESSAGE_LENGTH);

  const regionProblem = regionError(failure, context, on, awsMessage);
  if (regionProblem !== undefined) {
    return regionProblem;
  }
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
    return new UpstreamRejected(`${on} failed: the broker's AWS credentials were not accepted (${name}: ${awsMessage}); check the credential provider chain`, { cause: error });
  }
  if (UNAVAILABLE_ERRORS.has(name) || (failure.$metadata?.httpStatusCode ?? 0) >= 500) {
    return new UpstreamUnavailable(`${on} failed after retries (${name}); retry later`, { cause: error });
  }
  if (failure.$metadata?.httpStatusCode !== undefined) {
    return new UpstreamRejected(`${on} was rejected (${name}: ${awsMessage})`, { cause: error });
  }
  return new UpstreamUnavailable(`${on} failed (${name}); retry later`, { cause: error });
}

/**
 * Maps the errors that a wrong or missing region causes, naming `settings.region` with
 * AWS's error code and message. They are: no region at all, a regional host name that
 * does not resolve, a signature scoped to another region than the endpoint's, and an
 * unrecognized client, which AWS also returns for a region not enabled for the account.
 */
function regionError(failure: AwsFailure, context: AwsErrorContext, on: string, awsMessage: string): AdapterError | undefined {
  const name = failure.name ?? "Error";
  const cause = { cause: failure };
  if (failure.message === MISSING_REGION_MESSAGE) {
    return new UpstreamRejected(`${on} failed: no AWS region is set (${failure.message}); set settings.region, AWS_REGION, or give secret_id as an ARN`, cause);
  }
  if (failure.code !== undefined && UNKNOWN_HOST_CODES.has(failure.code)) {
    const host = failure.hostname ?? "the endpoint host";
    const fix = context.endpoint === undefined ? `the regional endpoint of settings.region ${context.region}; check settings.region` : `the host of settings.endpoint ${context.endpoint}; check settings.endpoint`;
    return new UpstreamUnavailable(`${on} failed: ${host} does not resolve (${failure.code}); it is ${fix}`, cause);
  }
  if (name === "InvalidSignatureException" && WRONG_REGION_MESSAGE.test(awsMessage)) {
    const endpoint = context.endpoint === undefined ? "the endpoint" : `settings.endpoint ${context.endpoint}`;
    return new UpstreamRejected(`${on} was rejected (${name}: ${awsMessage}); settings.region ${context.region} must be the region of ${endpoint}`, cause);
  }
  if (UNRECOGNIZED_CLIENT_ERRORS.has(name)) {
    return new UpstreamRejected(
      `${on} was rejected (${name}: ${awsMessage}); check settings.region ${context.region}, which must be enabled for the AWS account (opt-in regions are off by default), then the broker's AWS access key`,
      cause,
    );
  }
  return undefined;
}
