/**
 * Errors the SDK raises. Every one derives from `SecretsBrokerError` and carries a stable
 * `code`. Messages name the request and the failed check; they never contain an access
 * token, a client assertion, a subject token or a credential value.
 */
export type SdkErrorCode = "broker_problem" | "oauth_error" | "broker_unavailable" | "invalid_response" | "invalid_configuration" | "client_closed";

export class SecretsBrokerError extends Error {
  override name = "SecretsBrokerError";

  constructor(
    readonly code: SdkErrorCode,
    message: string,
    /** Whether the same call may succeed later (the broker was down, slow or busy). */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The broker responded with an RFC 9457 problem document. */
export class BrokerProblemError extends SecretsBrokerError {
  override name = "BrokerProblemError";

  constructor(
    readonly status: number,
    /** The stable problem type URI, e.g. `urn:secrets-broker:problem:no-grant`. */
    readonly type: string,
    /** The broker's error code, e.g. `no_grant`. */
    readonly problemCode: string,
    readonly detail: string,
    readonly requestId: string | null,
    request: string,
  ) {
    super("broker_problem", `${request}: ${detail} (${status} ${problemCode})`, status === 429 || status >= 500);
  }
}

/** The token endpoint responded with an OAuth error (RFC 6749 section 5.2). */
export class OAuthError extends SecretsBrokerError {
  override name = "OAuthError";

  constructor(
    readonly status: number,
    /** The OAuth error code, e.g. `invalid_client`, `invalid_scope`. */
    readonly error: string,
    readonly errorDescription: string,
    request: string,
  ) {
    super("oauth_error", `${request}: ${error}: ${errorDescription}`, status === 429 || status >= 500);
  }
}

/** The broker could not be reached, or kept failing until the retries ran out. */
export class BrokerUnavailableError extends SecretsBrokerError {
  override name = "BrokerUnavailableError";

  constructor(message: string, options?: { cause?: unknown }) {
    super("broker_unavailable", message, true, options);
  }
}

/** The broker responded with something the SDK cannot parse. */
export class InvalidBrokerResponse extends SecretsBrokerError {
  override name = "InvalidBrokerResponse";

  constructor(message: string) {
    super("invalid_response", message, false);
  }
}

/** An option passed to the SDK is wrong; raised at construction, before any request. */
export class InvalidConfiguration extends SecretsBrokerError {
  override name = "InvalidConfiguration";

  constructor(message: string) {
    super("invalid_configuration", message, false);
  }
}

/** The client was closed; create a new one. */
export class ClientClosed extends SecretsBrokerError {
  override name = "ClientClosed";

  constructor() {
    super("client_closed", "the secrets-broker client is closed; create a new client", false);
  }
}
