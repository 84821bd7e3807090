/**
 * Stable error codes. Each maps to one HTTP status and one problem `type` in
 * `broker/http/problem.ts`; clients and tests key on the code, never on the message.
 */
export type ErrorCode =
  | "validation_failed"
  | "invalid_json"
  | "unsupported_media_type"
  | "payload_too_large"
  | "unauthenticated"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "invalid_state"
  | "not_initialized"
  | "already_initialized"
  | "no_grant"
  | "grant_expired"
  | "insufficient_scope"
  | "upstream_unavailable"
  | "upstream_timeout"
  | "upstream_not_found"
  | "upstream_rejected"
  | "upstream_conflict"
  | "internal";

/** One field that failed validation, in the shape of RFC 9457's `invalid-params` example. */
export interface InvalidParam {
  name: string;
  reason: string;
}

/** Base of every error the broker reports to a caller. Messages never contain secrets. */
export class BrokerError extends Error {
  override name = "BrokerError";
  /** Extra members of the problem document (RFC 9457 section 3.2), such as the id of a conflicting record. */
  extensions: Record<string, unknown> = {};

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly invalidParams: InvalidParam[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class ValidationFailed extends BrokerError {
  override name = "ValidationFailed";

  constructor(invalidParams: InvalidParam[]) {
    super("validation_failed", describeInvalidParams(invalidParams), invalidParams);
  }
}

export class NotFound extends BrokerError {
  override name = "NotFound";

  constructor(resource: string, id: string) {
    super("not_found", `${resource} ${id} not found`);
  }
}

export class Conflict extends BrokerError {
  override name = "Conflict";

  constructor(message: string) {
    super("conflict", message);
  }
}

export class InvalidState extends BrokerError {
  override name = "InvalidState";

  constructor(message: string) {
    super("invalid_state", message);
  }
}

function describeInvalidParams(params: InvalidParam[]): string {
  if (params.length === 0) {
    return "request is invalid";
  }
  return params.map((param) => `${param.name}: ${param.reason}`).join("; ");
}

/** A workload asked for a credential that no grant of its service account allows. */
export class NoGrant extends BrokerError {
  override name = "NoGrant";

  constructor(message: string) {
    super("no_grant", message);
  }
}

/** Every grant that would allow the credential is outside its validity window. */
export class GrantExpired extends BrokerError {
  override name = "GrantExpired";

  constructor(message: string) {
    super("grant_expired", message);
  }
}

/** A grant allows the credential, but the access token lacks a scope the grant requires. */
export class InsufficientScope extends BrokerError {
  override name = "InsufficientScope";

  constructor(message: string) {
    super("insufficient_scope", message);
  }
}

export type UpstreamErrorCode = Extract<ErrorCode, `upstream_${string}`>;

/** An adapter call failed; `retryable` states whether the same request may succeed later. */
export class UpstreamFailed extends BrokerError {
  override name = "UpstreamFailed";

  constructor(
    code: UpstreamErrorCode,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(code, message, [], options);
  }
}
