import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { routePath } from "hono/route";
import type { BrokerDeps } from "../deps.js";
import { loggableError } from "../logging/logger.js";
import { BrokerError, ValidationFailed } from "../errors.js";
import { authenticateOperator } from "./auth-middleware.js";
import { problemResponse } from "./problem.js";
import { hasAnnouncedLength } from "./request-body.js";
import { allowedMethodsLookup } from "./allowed-methods.js";
import type { AppEnv } from "./request-context.js";
import type { BrokerApp } from "./route-helpers.js";
import { registerApplicationRoutes } from "./routes/applications-routes.js";
import { registerAuditRoutes } from "./routes/audit-routes.js";
import { ESTATE_BODY_LIMIT_BYTES, registerEstateRoutes } from "./routes/estate-routes.js";
import { registerOperatorTokenRoutes } from "./routes/operator-token-routes.js";
import { registerServiceAccountRoutes } from "./routes/service-accounts-routes.js";
import { registerSystemRoutes } from "./routes/system-routes.js";
import { registerTrustRoutes } from "./routes/trust-routes.js";
import { toInvalidParams } from "./validation.js";
import { isWorkloadPath } from "./workload-auth.js";
import { registerCredentialRoutes } from "../credentials/credential-routes.js";
import { registerGrantRoutes } from "../grants/grant-routes.js";
import { registerExceptionRoutes } from "../governance/exceptions/exception-routes.js";
import { registerFindingRoutes } from "../governance/findings/finding-routes.js";
import { registerReviewRoutes } from "../governance/reviews/review-routes.js";
import { registerMasterKeyRoutes } from "../crypto/master-key-routes.js";
import { registerLeaseRoutes } from "../leases/lease-routes.js";
import { registerRotationGauges } from "../rotation/rotation-metrics.js";
import { registerRotationRoutes } from "../rotation/rotation-routes.js";
import { registerSecretRoutes } from "../secrets/secret-routes.js";
import { registerLineageRoutes } from "../lineage/lineage-routes.js";
import { registerIncidentRoutes } from "../incident/incident-routes.js";
import { registerEvidenceRoutes } from "../evidence/evidence-routes.js";
import { registerIntrospectionRoutes } from "../tokens/introspection-routes.js";
import { registerMetadataRoutes } from "../tokens/metadata-routes.js";
import { registerSigningKeyRoutes } from "../tokens/signing-key-routes.js";
import { registerTokenRoutes } from "../tokens/token-routes.js";

/** Incoming request ids are kept when they look like ids; anything else is replaced. */
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const BODY_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** OAuth endpoints take form-encoded bodies and return errors in the OAuth shape. */
const OAUTH_FORM_PATHS = /^\/v1\/(token|introspect|revoke)$/;
/** PostgreSQL SQLSTATE codes that mean the request conflicts with stored data. */
const UNIQUE_VIOLATION = "23505";
const FOREIGN_KEY_VIOLATION = "23503";
/** SQLSTATE codes of text that PostgreSQL cannot store, such as a NUL character. */
const NUL_CHARACTER = "22021";
const UNTRANSLATABLE_CHARACTER = "22P05";

/** Returns the query string of a URL with its `?`, or ""; cheaper than parsing the URL on every request. */
function queryOf(url: string): string {
  const start = url.indexOf("?");
  return start < 0 ? "" : url.slice(start, url.includes("#", start) ? url.indexOf("#", start) : undefined);
}

/** Builds the HTTP application: middleware, every route, the OpenAPI document and error mapping. */
export function createApp(deps: BrokerDeps): BrokerApp {
  const app: BrokerApp = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        throw new ValidationFailed(toInvalidParams(result.error.issues));
      }
    },
  });

  app.use(
    requestId({
      generator: () => crypto.randomUUID(),
      limitLength: 128,
    }),
  );
  app.use(async function keepWellFormedRequestId(c, next) {
    if (!REQUEST_ID_PATTERN.test(c.get("requestId"))) {
      c.set("requestId", crypto.randomUUID());
      c.header("X-Request-Id", c.get("requestId"));
    }
    await next();
  });
  app.use(async function logAndMeasure(c, next) {
    const started = performance.now();
    await next();
    const route = routePath(c, -1) || "unmatched";
    const seconds = (performance.now() - started) / 1000;
    deps.metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
    deps.metrics.httpDuration.observe({ method: c.req.method, route }, seconds);
    deps.log.info(
      { requestId: c.get("requestId"), method: c.req.method, route, status: c.res.status, durationMs: Math.round(seconds * 1000) },
      "request answered",
    );
  });
  const defaultLimit = limitBody(deps.config.bodyLimitBytes);
  const estateLimit = limitBody(Math.max(ESTATE_BODY_LIMIT_BYTES, deps.config.bodyLimitBytes));
  app.use(function limitRequestBody(c, next) {
    return c.req.path === "/v1/import" ? estateLimit(c, next) : defaultLimit(c, next);
  });
  app.use(async function requireJsonBody(c, next) {
    if (OAUTH_FORM_PATHS.test(c.req.path)) {
      return next();
    }
    const hasBody = c.req.header("content-length") !== undefined && c.req.header("content-length") !== "0";
    const chunked = c.req.header("transfer-encoding") !== undefined;
    const type = c.req.header("content-type") ?? "";
    if (BODY_METHODS.has(c.req.method) && (hasBody || chunked) && !/^application\/json\s*(;|$)/i.test(type)) {
      throw new BrokerError("unsupported_media_type", `Content-Type must be application/json, not '${type || "missing"}'`);
    }
    await next();
  });
  app.use(async function rejectNulCharacters(c, next) {
    // PostgreSQL text cannot hold U+0000: refuse it here, with a 400, rather than fail in a query.
    if (/%00/.test(queryOf(c.req.url))) {
      throw new ValidationFailed([{ name: "query", reason: "must not contain NUL (%00) characters" }]);
    }
    await next();
  });

  const operatorAuthentication = authenticateOperator(deps);
  app.use("/v1/*", function authenticateUnlessWorkloadPath(c, next) {
    return isWorkloadPath(c.req.path) ? next() : operatorAuthentication(c, next);
  });

  registerSystemRoutes(app, deps);
  registerApplicationRoutes(app, deps);
  registerServiceAccountRoutes(app, deps);
  registerTrustRoutes(app, deps);
  registerOperatorTokenRoutes(app, deps);
  registerAuditRoutes(app, deps);
  registerEstateRoutes(app, deps);
  registerMetadataRoutes(app, deps);
  registerTokenRoutes(app, deps);
  registerIntrospectionRoutes(app, deps);
  registerLeaseRoutes(app, deps);
  registerSigningKeyRoutes(app, deps);
  registerMasterKeyRoutes(app, deps);
  registerLineageRoutes(app, deps);
  registerIncidentRoutes(app, deps);
  registerEvidenceRoutes(app, deps);
  registerSecretRoutes(app, deps);
  registerGrantRoutes(app, deps);
  registerCredentialRoutes(app, deps);
  registerRotationRoutes(app, deps);
  registerReviewRoutes(app, deps);
  registerExceptionRoutes(app, deps);
  registerFindingRoutes(app, deps);
  registerRotationGauges(deps);

  app.openAPIRegistry.registerComponent("securitySchemes", "operatorToken", {
    type: "http",
    scheme: "bearer",
    description: "An operator token made by `secrets-broker init` or POST /v1/operator-tokens.",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "accessToken", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "An access token from POST /v1/token with the broker's issuer as audience; accepted on a workload's own leases.",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "secrets-broker",
      version: "0.1.0",
      description: "Secrets lifecycle broker for machine identities.",
    },
    servers: [{ url: deps.config.issuer }],
  });

  const allowedMethods = allowedMethodsLookup(app.routes);
  app.notFound((c) => {
    const allowed = allowedMethods(c.req.path);
    if (allowed.length === 0) {
      return problemResponse(c, "not_found", `no route for ${c.req.method} ${c.req.path}`);
    }
    c.header("Allow", allowed.join(", "));
    return problemResponse(c, "method_not_allowed", `${c.req.path} does not take ${c.req.method}; use ${allowed.join(" or ")}`);
  });
  app.onError((error, c) => errorResponse(deps, c, error));
  return app;
}

/**
 * Refuses a body over `maxSize` bytes. A body of announced length is checked by its header
 * alone and left unread (see request-body.ts). A chunked body is counted as hono's
 * middleware reads it. GET and HEAD requests carry no body on the Node.js server.
 */
function limitBody(maxSize: number): MiddlewareHandler {
  const tooLarge = (c: Context) => problemResponse(c, "payload_too_large", `request body is larger than the limit of ${maxSize} bytes`);
  const countStreamedBody = bodyLimit({ maxSize, onError: tooLarge });
  return async function limitBodySize(c, next) {
    if (hasAnnouncedLength(c)) {
      return Number.parseInt(c.req.header("content-length")!, 10) > maxSize ? tooLarge(c) : next();
    }
    if (c.req.method === "GET" || c.req.method === "HEAD") {
      return next();
    }
    return countStreamedBody(c, next);
  };
}

function errorResponse(deps: BrokerDeps, c: Context<AppEnv>, error: unknown): Response {
  if (error instanceof BrokerError) {
    return problemResponse(c, error.code, error.message, error.invalidParams, error.extensions);
  }
  if (error instanceof HTTPException && error.status === 400) {
    return problemResponse(c, "invalid_json", "request body is not valid JSON; send a JSON object");
  }
  if (error instanceof HTTPException && error.status === 413) {
    return problemResponse(c, "payload_too_large", "request body is too large");
  }
  if (error instanceof HTTPException && error.status === 415) {
    return problemResponse(c, "unsupported_media_type", "Content-Type must be application/json");
  }

  const sqlState = (error as { cause?: { code?: string } }).cause?.code;
  if (sqlState === NUL_CHARACTER || sqlState === UNTRANSLATABLE_CHARACTER) {
    return problemResponse(c, "validation_failed", "text fields must not contain NUL (\\u0000) characters", [
      { name: "body", reason: "must not contain NUL (\\u0000) characters" },
    ]);
  }
  if (sqlState === UNIQUE_VIOLATION) {
    return problemResponse(c, "conflict", "a record with the same unique name already exists; retry with another name");
  }
  if (sqlState === FOREIGN_KEY_VIOLATION) {
    return problemResponse(c, "conflict", "the request refers to a record that no longer exists, or removes one still in use");
  }

  deps.log.error({ err: loggableError(error), requestId: c.get("requestId") }, "request failed with an unexpected error");
  return problemResponse(c, "internal", "the broker could not complete the request; see the server log for this request_id");
}
