import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ErrorCode, InvalidParam } from "../errors.js";

/** HTTP status and title per error code: the one place where codes meet HTTP. */
const PROBLEMS: Record<ErrorCode, { status: ContentfulStatusCode; title: string }> = {
  validation_failed: { status: 400, title: "Request validation failed" },
  invalid_json: { status: 400, title: "Request body is not valid JSON" },
  unsupported_media_type: { status: 415, title: "Unsupported media type" },
  payload_too_large: { status: 413, title: "Request body too large" },
  unauthenticated: { status: 401, title: "Authentication required" },
  forbidden: { status: 403, title: "Forbidden" },
  not_found: { status: 404, title: "Not found" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
  conflict: { status: 409, title: "Conflict" },
  invalid_state: { status: 409, title: "Invalid state for this operation" },
  not_initialized: { status: 503, title: "Broker not initialized" },
  already_initialized: { status: 409, title: "Broker already initialized" },
  no_grant: { status: 403, title: "No grant allows this credential" },
  grant_expired: { status: 403, title: "Grant outside its validity window" },
  insufficient_scope: { status: 403, title: "Access token lacks a scope the grant requires" },
  upstream_unavailable: { status: 503, title: "Upstream unavailable" },
  upstream_timeout: { status: 504, title: "Upstream timed out" },
  upstream_not_found: { status: 502, title: "Upstream has no such secret or credential" },
  upstream_rejected: { status: 502, title: "Upstream rejected the request" },
  upstream_conflict: { status: 409, title: "Upstream changed concurrently" },
  internal: { status: 500, title: "Internal error" },
};

/** Seconds a client should wait before retrying a request that failed on an unavailable or slow upstream. */
export const UPSTREAM_RETRY_AFTER_SECONDS = 5;
const RETRYABLE_CODES = new Set<ErrorCode>(["upstream_unavailable", "upstream_timeout"]);

/** Stable problem `type` URI for an error code (RFC 9457 section 3.1.1). */
export function problemType(code: ErrorCode): string {
  return `urn:secrets-broker:problem:${code.replaceAll("_", "-")}`;
}

export function problemStatus(code: ErrorCode): ContentfulStatusCode {
  return PROBLEMS[code].status;
}

/** Writes an RFC 9457 problem document. */
export function problemResponse(
  c: Context,
  code: ErrorCode,
  detail: string,
  invalidParams: InvalidParam[] = [],
  extensions: Record<string, unknown> = {},
): Response {
  const { status, title } = PROBLEMS[code];
  const body: Record<string, unknown> = {
    ...extensions,
    type: problemType(code),
    title,
    status,
    detail,
    code,
    request_id: c.get("requestId") ?? null,
  };
  if (invalidParams.length > 0) {
    body["invalid_params"] = invalidParams;
  }
  if (RETRYABLE_CODES.has(code)) {
    c.header("Retry-After", String(UPSTREAM_RETRY_AFTER_SECONDS));
  }
  if (status === 401) {
    c.header("WWW-Authenticate", 'Bearer realm="secrets-broker"');
  }
  return c.body(JSON.stringify(body), status, { "Content-Type": "application/problem+json" });
}
