import type { BrokerDeps } from "../deps.js";
import type { BrokerApp } from "../http/route-helpers.js";
import { TOKEN_EXCHANGE_GRANT } from "./token-service.js";
import { ACCEPTED_JWT_ALGORITHMS } from "./jwt-rules.js";

/** Keys and metadata change rarely; verifiers may cache them for five minutes. */
const PUBLIC_CACHE_SECONDS = 300;

/** RFC 8414 authorization-server metadata and the JWKS of the broker's signing keys. */
export function registerMetadataRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.get("/.well-known/oauth-authorization-server", async (c) => {
    const issuer = deps.config.issuer;
    c.header("Cache-Control", `public, max-age=${PUBLIC_CACHE_SECONDS}`);
    return c.json({
      issuer,
      token_endpoint: `${issuer}/v1/token`,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      introspection_endpoint: `${issuer}/v1/introspect`,
      revocation_endpoint: `${issuer}/v1/revoke`,
      grant_types_supported: ["client_credentials", TOKEN_EXCHANGE_GRANT],
      response_types_supported: [],
      token_endpoint_auth_methods_supported: ["private_key_jwt"],
      token_endpoint_auth_signing_alg_values_supported: ACCEPTED_JWT_ALGORITHMS,
      introspection_endpoint_auth_methods_supported: ["private_key_jwt", "bearer"],
      revocation_endpoint_auth_methods_supported: ["private_key_jwt", "bearer"],
      access_token_signing_alg_values_supported: await deps.keyRing.algorithms(),
      scopes_supported: [],
    });
  });

  app.get("/.well-known/jwks.json", async (c) => {
    c.header("Cache-Control", `public, max-age=${PUBLIC_CACHE_SECONDS}`);
    return c.json({ keys: await deps.keyRing.publishedKeys() });
  });
}
