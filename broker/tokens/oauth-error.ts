import type { Context } from "hono";
import { readBodyText } from "../http/request-body.js";

/** OAuth error codes of RFC 6749 section 5.2, RFC 8693 section 2.2.2 and RFC 7009 section 2.2.1. */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "invalid_scope"
  | "invalid_target"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "unsupported_token_type"
  | "server_error";

/**
 * A refusal at an OAuth endpoint. The description names the failed check and never
 * contains the presented token or assertion. `reason` is a short stable label for
 * audit events and metrics.
 */
export class OAuthError extends Error {
  override name = "OAuthError";

  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly reason: string = error,
  ) {
    super(description);
  }

  /** RFC 6749 section 5.2: invalid_client is 401 when the client authenticated through a header; 400 otherwise is allowed, and we keep 401 for clarity. */
  get status(): 400 | 401 | 500 {
    if (this.error === "invalid_client") return 401;
    if (this.error === "server_error") return 500;
    return 400;
  }
}

/** Writes the OAuth error response with the no-store headers that RFC 6749 section 5.1 requires. */
export function oauthErrorResponse(c: Context, error: OAuthError): Response {
  return c.json({ error: error.error, error_description: error.description }, error.status, {
    "Cache-Control": "no-store",
    Pragma: "no-cache",
  });
}

const FORM_CONTENT_TYPE = /^application\/x-www-form-urlencoded\s*(;.*)?$/i;

/**
 * Parses an `application/x-www-form-urlencoded` body (a `charset` parameter is
 * accepted). A parameter sent twice is `invalid_request`, as RFC 6749 section 3.2 requires.
 */
export async function parseOAuthForm(c: Context): Promise<Map<string, string>> {
  const type = c.req.header("content-type") ?? "";
  if (!FORM_CONTENT_TYPE.test(type)) {
    throw new OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded", "content_type");
  }
  const params = new URLSearchParams(await readBodyText(c));
  const form = new Map<string, string>();
  for (const [name, value] of params) {
    if (form.has(name)) {
      throw new OAuthError("invalid_request", `parameter ${name} is repeated; send it once`, "repeated_parameter");
    }
    form.set(name, value);
  }
  return form;
}

/** Returns a required form parameter or raises invalid_request naming it. */
export function requireParam(form: Map<string, string>, name: string): string {
  const value = form.get(name);
  if (value === undefined || value === "") {
    throw new OAuthError("invalid_request", `missing parameter ${name}`, "missing_parameter");
  }
  return value;
}
