/**
 * Errors an adapter raises. `retryable` states whether the same call may
 * succeed later (the upstream was down or slow) or will fail again (the upstream
 * refused it). Messages name the secret or upstream id and never contain a value,
 * a password or a token.
 */
export type AdapterErrorCode =
  | "upstream_unavailable"
  | "upstream_timeout"
  | "upstream_not_found"
  | "upstream_rejected"
  | "upstream_conflict"
  | "invalid_settings"
  | "invalid_value";

export class AdapterError extends Error {
  override name = "AdapterError";

  constructor(
    readonly code: AdapterErrorCode,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The upstream could not be reached or reported that it is unavailable (connection refused, 503, sealed). */
export class UpstreamUnavailable extends AdapterError {
  override name = "UpstreamUnavailable";

  constructor(message: string, options?: { cause?: unknown }) {
    super("upstream_unavailable", message, true, options);
  }
}

/** The call did not finish within its timeout. */
export class UpstreamTimeout extends AdapterError {
  override name = "UpstreamTimeout";

  constructor(message: string, options?: { cause?: unknown }) {
    super("upstream_timeout", message, true, options);
  }
}

/** The upstream has no such secret, version or credential. */
export class UpstreamNotFound extends AdapterError {
  override name = "UpstreamNotFound";

  constructor(message: string, options?: { cause?: unknown }) {
    super("upstream_not_found", message, false, options);
  }
}

/** The upstream refused the call (permission denied, invalid request, login failed). */
export class UpstreamRejected extends AdapterError {
  override name = "UpstreamRejected";

  constructor(message: string, options?: { cause?: unknown }) {
    super("upstream_rejected", message, false, options);
  }
}

/** Someone else changed the upstream first (check-and-set mismatch, a version id already used with another value). */
export class UpstreamConflict extends AdapterError {
  override name = "UpstreamConflict";

  constructor(message: string, options?: { cause?: unknown }) {
    super("upstream_conflict", message, false, options);
  }
}

/** The upstream rotates the secret itself (an AWS rotation Lambda), so the broker must not rotate it too. */
export class RotatedUpstream extends UpstreamConflict {
  override name = "RotatedUpstream";

  constructor(
    message: string,
    readonly rotator: string,
  ) {
    super(message);
  }
}

/** One setting that failed validation, named by its dotted path under `settings`. */
export interface InvalidSetting {
  name: string;
  reason: string;
}

/** The adapter settings of a secret are invalid; raised when a secret is created or updated. */
export class InvalidAdapterSettings extends AdapterError {
  override name = "InvalidAdapterSettings";

  constructor(readonly invalidSettings: InvalidSetting[]) {
    super("invalid_settings", invalidSettings.map((entry) => `${entry.name}: ${entry.reason}`).join("; "), false);
  }
}

/** A value an operator gave for a secret does not fit the upstream (too short a password, an unknown field). */
export class InvalidSecretValue extends AdapterError {
  override name = "InvalidSecretValue";

  constructor(
    /** The field of the value at fault, or null for the value as a whole. */
    readonly field: string | null,
    message: string,
  ) {
    super("invalid_value", message, false);
  }
}
