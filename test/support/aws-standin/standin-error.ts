/**
 * An error as AWS JSON 1.1 services send it: HTTP status 400 (500 for server faults)
 * and a body `{"__type": "<ExceptionName>", "message": "..."}`. The SDK reads the
 * exception name from `__type` and sets it as the error's `name`.
 */
export class AwsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export function resourceNotFound(message = "Secrets Manager can't find the specified secret."): AwsError {
  return new AwsError("ResourceNotFoundException", message);
}

export function invalidParameter(message: string): AwsError {
  return new AwsError("InvalidParameterException", message);
}

export function invalidRequest(message: string): AwsError {
  return new AwsError("InvalidRequestException", message);
}
