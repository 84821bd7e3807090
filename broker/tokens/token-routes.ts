import type { Context } from "hono";
import { recordAuditEvents } from "../audit/audit-writer.js";
import type { BrokerDeps } from "../deps.js";
import { auditDeps } from "../http/auth-middleware.js";
import { loggableError } from "../logging/logger.js";
import type { RequestContext } from "../audit/audit-types.js";
import { type AppEnv, requestContext } from "../http/request-context.js";
import type { BrokerApp } from "../http/route-helpers.js";
import { checkAccountUsable, verifyClientAssertion } from "./client-assertion.js";
import { OAuthError, oauthErrorResponse, parseOAuthForm, requireParam } from "./oauth-error.js";
import { JWT_SUBJECT_TOKEN_TYPES, verifySubjectToken } from "./subject-token.js";
import { forgetAccountSnapshot } from "./account-snapshot.js";
import { AccountChanged, issueAccessToken, TOKEN_EXCHANGE_GRANT, type TokenRequest, type TokenResponse } from "./token-service.js";

const TTL_PATTERN = /^[1-9]\d{0,6}$/;
/** Tries at issuing while the account keeps changing under the request, before failing. */
const ISSUE_ATTEMPTS = 3;

/** `POST /v1/token`: the OAuth 2.0 token endpoint (RFC 6749 section 3.2). */
export function registerTokenRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.post("/v1/token", async function tokenEndpoint(c) {
    try {
      const form = await parseOAuthForm(c);
      const grantType = requireParam(form, "grant_type");
      const response = await identifyAndIssue(deps, requestContext(c), form, grantType);
      return c.json(response, 200, { "Cache-Control": "no-store", Pragma: "no-cache" });
    } catch (error) {
      return refuse(deps, c, error, "token.issue");
    }
  });
}

/**
 * Checks the request and issues the token. The first attempt may check a client against this
 * process's cached account snapshot. If the account changed meanwhile, the issuance writes
 * nothing, so the request is checked again against a fresh read.
 */
async function identifyAndIssue(deps: BrokerDeps, context: RequestContext, form: Map<string, string>, grantType: string): Promise<TokenResponse> {
  for (let attempt = 1; ; attempt++) {
    const request = await identify(deps, form, grantType, attempt === 1);
    try {
      return await issueAccessToken(deps, context, request);
    } catch (error) {
      if (!(error instanceof AccountChanged) || attempt === ISSUE_ATTEMPTS) {
        throw error;
      }
      forgetAccountSnapshot(deps.db, error.serviceAccountId);
    }
  }
}

async function identify(deps: BrokerDeps, form: Map<string, string>, grantType: string, cachedAccount: boolean): Promise<TokenRequest> {
  const common = {
    audience: requestedAudience(form),
    scope: form.get("scope"),
    ttl: parseTtl(form.get("ttl")),
  };

  if (grantType === "client_credentials") {
    const client = await verifyClientAssertion(deps, form, { cachedAccount });
    return {
      ...common,
      account: client.account,
      grantType,
      clientKid: client.kid,
      assertionUse: client.assertionUse,
      accountVersion: client.accountVersion,
    };
  }

  if (grantType === TOKEN_EXCHANGE_GRANT) {
    const subjectToken = requireParam(form, "subject_token");
    const subjectTokenType = requireParam(form, "subject_token_type");
    if (!JWT_SUBJECT_TOKEN_TYPES.includes(subjectTokenType)) {
      throw new OAuthError("invalid_request", `subject_token_type must be one of ${JWT_SUBJECT_TOKEN_TYPES.join(", ")}`, "subject_token_type");
    }
    const requestedType = form.get("requested_token_type");
    if (requestedType !== undefined && requestedType !== "urn:ietf:params:oauth:token-type:access_token") {
      throw new OAuthError("invalid_request", "requested_token_type must be urn:ietf:params:oauth:token-type:access_token", "requested_token_type");
    }
    const identity = await verifySubjectToken(deps, subjectToken);
    checkAccountUsable(identity.account, deps.clock.now(), "invalid_request");
    return {
      ...common,
      account: identity.account,
      grantType,
      subjectIssuer: identity.issuer,
      subject: identity.subject,
      accountVersion: { revision: identity.account.revision, keySet: null },
    };
  }

  throw new OAuthError(
    "unsupported_grant_type",
    `grant_type must be client_credentials or ${TOKEN_EXCHANGE_GRANT}`,
    "grant_type",
  );
}

/**
 * Reads the token's target from `audience` (RFC 8693) or `resource` (RFC 8707). A token has
 * one audience, so two different targets are invalid_target rather than one of them ignored.
 */
function requestedAudience(form: Map<string, string>): string | undefined {
  const audience = form.get("audience");
  const resource = form.get("resource");
  if (audience !== undefined && resource !== undefined && audience !== resource) {
    throw new OAuthError("invalid_target", "audience and resource name different targets: send only one, because a token has one audience", "audience");
  }
  return audience ?? resource;
}

function parseTtl(value: string | undefined): number | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (!TTL_PATTERN.test(value)) {
    throw new OAuthError("invalid_request", "ttl must be a positive whole number of seconds", "ttl");
  }
  return Number(value);
}

/**
 * Returns the OAuth error response and records the refusal in the audit log with
 * the failed check; the presented token or assertion is never recorded.
 */
export async function refuse(deps: BrokerDeps, c: Context<AppEnv>, error: unknown, action: string): Promise<Response> {
  const oauthError =
    error instanceof OAuthError ? error : new OAuthError("server_error", "the broker could not complete the request", "internal");
  if (!(error instanceof OAuthError)) {
    deps.log.error({ err: loggableError(error), requestId: c.get("requestId") }, "token endpoint failed");
  }
  deps.metrics.authFailures.inc({ reason: `oauth_${oauthError.reason}` });
  await recordAuditEvents(auditDeps(deps), requestContext(c), [
    {
      action,
      outcome: oauthError.error === "server_error" ? "failure" : "denied",
      target: null,
      details: { error: oauthError.error, reason: oauthError.reason, description: oauthError.description },
    },
  ]).catch((auditError: unknown) => deps.log.error({ err: loggableError(auditError) }, "failed to record a refused token request"));
  return oauthErrorResponse(c, oauthError);
}
