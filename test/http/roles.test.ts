import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROLES, type Role, roleAllows } from "../../broker/auth/roles.js";
import {
  addFederatedSubject,
  addWorkloadKey,
  auditEventsAfter,
  createApplication,
  createOperatorToken,
  createServiceAccount,
  createTrustedIssuer,
  documentedFoundationRoutes,
  expectProblem,
  FUTURE_EXPIRY,
  lastAuditSeq,
  publicJwk,
  registerSnapshot,
  tokenIdOf,
  uniqueName,
} from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { createGrant, createSecret } from "../credentials/credential-fixtures.js";

/** Creates a grant for a new account and secret, and returns its id. */
async function newGrantId(broker: TestBroker): Promise<string> {
  const grant = await createGrant(broker, { service_account_id: (await createServiceAccount(broker)).id, secret: (await createSecret(broker)).name });
  return grant.id as string;
}

/** A concrete request for a route: the path with real ids filled in, and a valid body. */
interface PreparedRequest {
  path?: string;
  body?: unknown;
}

interface RouteCase {
  /** `METHOD /path` as the OpenAPI document spells it. */
  route: string;
  /** The lowest role allowed to call the route. */
  role: Role;
  success: number;
  prepare?: (broker: TestBroker) => Promise<PreparedRequest>;
}

const ROUTES: RouteCase[] = [
  {
    route: "POST /v1/applications",
    role: "operator",
    success: 201,
    prepare: async () => ({ body: { name: uniqueName("app"), technical_owner: "team@example.com" } }),
  },
  { route: "GET /v1/applications", role: "auditor", success: 200 },
  {
    route: "GET /v1/applications/{id}",
    role: "auditor",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/applications/${(await createApplication(broker)).id}` }),
  },
  {
    route: "PATCH /v1/applications/{id}",
    role: "operator",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/applications/${(await createApplication(broker)).id}`, body: { criticality: "high" } }),
  },
  {
    route: "POST /v1/service-accounts",
    role: "operator",
    success: 201,
    prepare: async (broker) => ({
      body: {
        name: uniqueName("sa"),
        application_id: (await createApplication(broker)).id,
        technical_owner: "alice@example.com",
        expires_at: FUTURE_EXPIRY,
      },
    }),
  },
  { route: "GET /v1/service-accounts", role: "auditor", success: 200 },
  {
    route: "GET /v1/service-accounts/{id}",
    role: "auditor",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/service-accounts/${(await createServiceAccount(broker)).id}` }),
  },
  {
    route: "PATCH /v1/service-accounts/{id}",
    role: "operator",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/service-accounts/${(await createServiceAccount(broker)).id}`, body: { privileged: true } }),
  },
  {
    route: "POST /v1/service-accounts/{id}/suspend",
    role: "operator",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/service-accounts/${(await createServiceAccount(broker)).id}/suspend` }),
  },
  {
    route: "POST /v1/service-accounts/{id}/activate",
    role: "operator",
    success: 200,
    prepare: async (broker) => {
      const account = await createServiceAccount(broker);
      await broker.request("POST", `/v1/service-accounts/${account.id}/suspend`);
      return { path: `/v1/service-accounts/${account.id}/activate` };
    },
  },
  {
    route: "POST /v1/service-accounts/{id}/decommission",
    role: "operator",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/service-accounts/${(await createServiceAccount(broker)).id}/decommission` }),
  },
  {
    route: "POST /v1/service-accounts/{id}/keys",
    role: "operator",
    success: 201,
    prepare: async (broker) => ({ path: `/v1/service-accounts/${(await createServiceAccount(broker)).id}/keys`, body: { jwk: publicJwk() } }),
  },
  {
    route: "GET /v1/service-accounts/{id}/keys",
    role: "auditor",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/service-accounts/${(await createServiceAccount(broker)).id}/keys` }),
  },
  {
    route: "DELETE /v1/service-accounts/{id}/keys/{kid}",
    role: "operator",
    success: 204,
    prepare: async (broker) => {
      const account = await createServiceAccount(broker);
      const key = await addWorkloadKey(broker, account.id);
      return { path: `/v1/service-accounts/${account.id}/keys/${key.kid}` };
    },
  },
  {
    route: "POST /v1/trusted-issuers",
    role: "operator",
    success: 201,
    prepare: async () => {
      const host = `${uniqueName("issuer")}.example.com`;
      return { body: { issuer: `https://${host}`, jwks_uri: `https://${host}/jwks` } };
    },
  },
  { route: "GET /v1/trusted-issuers", role: "auditor", success: 200 },
  {
    route: "GET /v1/trusted-issuers/{id}",
    role: "auditor",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/trusted-issuers/${(await createTrustedIssuer(broker)).id}` }),
  },
  {
    route: "DELETE /v1/trusted-issuers/{id}",
    role: "operator",
    success: 204,
    prepare: async (broker) => ({ path: `/v1/trusted-issuers/${(await createTrustedIssuer(broker)).id}` }),
  },
  {
    route: "POST /v1/service-accounts/{id}/federated-subjects",
    role: "operator",
    success: 201,
    prepare: async (broker) => {
      const account = await createServiceAccount(broker);
      const issuer = await createTrustedIssuer(broker);
      return {
        path: `/v1/service-accounts/${account.id}/federated-subjects`,
        body: { issuer: issuer.issuer, subject: "repo:example/orders:ref:refs/heads/main" },
      };
    },
  },
  {
    route: "GET /v1/service-accounts/{id}/federated-subjects",
    role: "auditor",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/service-accounts/${(await createServiceAccount(broker)).id}/federated-subjects` }),
  },
  {
    route: "DELETE /v1/service-accounts/{id}/federated-subjects/{subject_id}",
    role: "operator",
    success: 204,
    prepare: async (broker) => {
      const account = await createServiceAccount(broker);
      const issuer = await createTrustedIssuer(broker);
      const subject = await addFederatedSubject(broker, account.id, issuer.issuer);
      return { path: `/v1/service-accounts/${account.id}/federated-subjects/${subject.id}` };
    },
  },
  {
    route: "POST /v1/operator-tokens",
    role: "admin",
    success: 201,
    prepare: async () => ({ body: { role: "auditor", name: uniqueName("token") } }),
  },
  { route: "GET /v1/operator-tokens", role: "admin", success: 200 },
  {
    route: "POST /v1/operator-tokens/{id}/revoke",
    role: "admin",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/operator-tokens/${(await createOperatorToken(broker)).id}/revoke` }),
  },
  { route: "GET /v1/audit/events", role: "auditor", success: 200 },
  { route: "GET /v1/audit/verify", role: "auditor", success: 200 },
  {
    route: "POST /v1/import",
    role: "operator",
    success: 200,
    prepare: async () => ({ body: { applications: [{ name: uniqueName("app"), technical_owner: "team@example.com" }] } }),
  },
  {
    route: "POST /v1/secrets",
    role: "operator",
    success: 201,
    prepare: async () => ({ body: { name: `roles/${uniqueName("secret")}`, adapter: "local", owner: "team", generate: {} } }),
  },
  { route: "GET /v1/secrets", role: "auditor", success: 200 },
  {
    route: "GET /v1/secrets/{id}",
    role: "auditor",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/secrets/${(await createSecret(broker)).id}` }),
  },
  {
    route: "GET /v1/secrets/{id}/versions",
    role: "auditor",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/secrets/${(await createSecret(broker)).id}/versions` }),
  },
  {
    route: "GET /v1/secrets/{id}/rotation-schedule",
    role: "auditor",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/secrets/${(await createSecret(broker)).id}/rotation-schedule` }),
  },
  {
    route: "POST /v1/secrets/{id}/external-rotation/refresh",
    role: "operator",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/secrets/${(await createSecret(broker)).id}/external-rotation/refresh` }),
  },
  {
    route: "PATCH /v1/secrets/{id}",
    role: "operator",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/secrets/${(await createSecret(broker)).id}`, body: { owner: "team-new" } }),
  },
  {
    route: "DELETE /v1/secrets/{id}",
    role: "operator",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/secrets/${(await createSecret(broker)).id}` }),
  },
  { route: "POST /v1/fingerprints", role: "operator", success: 200, prepare: async () => ({ body: { value: "a-leaked-value" } }) },
  { route: "GET /v1/evidence", role: "auditor", success: 200 },
  {
    route: "GET /v1/incident-report",
    role: "auditor",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/incident-report?service_account_id=${(await createServiceAccount(broker)).id}&from=2026-01-01T00:00:00Z` }),
  },
  {
    route: "POST /v1/grants",
    role: "operator",
    success: 201,
    prepare: async (broker) => ({ body: { service_account_id: (await createServiceAccount(broker)).id, secret: (await createSecret(broker)).name } }),
  },
  { route: "GET /v1/grants", role: "auditor", success: 200 },
  { route: "GET /v1/grants/{id}", role: "auditor", success: 200, prepare: async (broker) => ({ path: `/v1/grants/${await newGrantId(broker)}` }) },
  {
    route: "PATCH /v1/grants/{id}",
    role: "operator",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/grants/${await newGrantId(broker)}`, body: { justification: "CHG-2" } }),
  },
  { route: "DELETE /v1/grants/{id}", role: "operator", success: 200, prepare: async (broker) => ({ path: `/v1/grants/${await newGrantId(broker)}` }) },
  {
    route: "POST /v1/secrets/{id}/rotate",
    role: "operator",
    success: 202,
    prepare: async (broker) => ({ path: `/v1/secrets/${(await createSecret(broker)).id}/rotate`, body: { reason: "roles test" } }),
  },
  {
    route: "POST /v1/secrets/{id}/resync",
    role: "operator",
    // A local secret has no upstream versions, so a caller past the role check gets 409.
    success: 409,
    prepare: async (broker) => ({ path: `/v1/secrets/${(await createSecret(broker)).id}/resync`, body: { reason: "roles test" } }),
  },
  {
    route: "GET /v1/secrets/{id}/rotations",
    role: "auditor",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/secrets/${(await createSecret(broker)).id}/rotations` }),
  },
  { route: "GET /v1/rotations", role: "auditor", success: 200 },
  {
    route: "GET /v1/rotations/{id}",
    role: "auditor",
    success: 200,
    prepare: async (broker) => {
      const secret = await createSecret(broker);
      const started = await broker.request("POST", `/v1/secrets/${secret.id}/rotate`, { token: broker.tokens.operator });
      return { path: `/v1/rotations/${started.json.id}` };
    },
  },
  {
    route: "POST /v1/grants/{id}/revoke",
    role: "operator",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/grants/${await newGrantId(broker)}/revoke` }),
  },
];

/** Callers without a usable token, and the reason the audit event records for each. */
const UNAUTHENTICATED = [
  { caller: "no token", reason: "missing" },
  { caller: "malformed token", reason: "malformed" },
  { caller: "wrong secret", reason: "mismatch" },
  { caller: "revoked token", reason: "revoked" },
  { caller: "expired token", reason: "expired" },
] as const;

type UnauthenticatedCaller = (typeof UNAUTHENTICATED)[number]["caller"];

describe("operator roles", () => {
  let broker: TestBroker;
  /** The token each unauthenticated caller sends, and the token id its audit event names. */
  const badTokens = {} as Record<UnauthenticatedCaller, { token: string | null; target: string | null }>;

  beforeAll(async () => {
    broker = await startTestBroker();

    // Both tokens are admin tokens, so a rejection cannot come from the role check.
    const revoked = await createOperatorToken(broker, { role: "admin" });
    await broker.request("POST", `/v1/operator-tokens/${revoked.id}/revoke`);
    const expiring = await createOperatorToken(broker, {
      role: "admin",
      expires_at: new Date(broker.clock.now().getTime() + 60_000).toISOString(),
    });
    broker.clock.advance(120_000);

    badTokens["no token"] = { token: null, target: null };
    badTokens["malformed token"] = { token: "not-an-operator-token", target: null };
    badTokens["wrong secret"] = { token: `sbo_${tokenIdOf(broker.tokens.admin)}.${"A".repeat(43)}`, target: tokenIdOf(broker.tokens.admin) };
    badTokens["revoked token"] = { token: revoked.token, target: revoked.id };
    badTokens["expired token"] = { token: expiring.token, target: expiring.id };
  });

  afterAll(async () => {
    await broker.close();
  });

  it("covers every foundation route in OpenAPI document", async () => {
    const documented = await documentedFoundationRoutes(broker);

    expect(documented.sort()).toEqual(ROUTES.map((route) => route.route).sort());
  });

  describe.each(ROUTES)("$route", (routeCase) => {
    const [method, template] = routeCase.route.split(" ") as [string, string];
    const allowed = ROLES.filter((role) => roleAllows(role, routeCase.role));
    const rejected = ROLES.filter((role) => !roleAllows(role, routeCase.role));

    async function prepare(): Promise<{ path: string; body: unknown }> {
      const prepared = (await routeCase.prepare?.(broker)) ?? {};
      return { path: prepared.path ?? template, body: prepared.body };
    }

    it.each(allowed)("%s allowed", async (role) => {
      const { path, body } = await prepare();

      const response = await broker.request(method, path, { token: broker.tokens[role], body });

      expect(response.status, response.text).toBe(routeCase.success);
    });

    if (rejected.length > 0) {
      it.each(rejected)("%s rejected with 403", async (role) => {
        const { path, body } = await prepare();
        const before = await registerSnapshot(broker);
        const seq = await lastAuditSeq(broker);

        const response = await broker.request(method, path, { token: broker.tokens[role], body });

        expectProblem(response, 403, "forbidden");
        const events = await auditEventsAfter(broker, seq);
        expect(events).toHaveLength(1);
        expect(events[0]!.outcome).toBe("denied");
        expect(events[0]!.action).toBe("auth.authorize");
        expect(events[0]!.actor).toBe(`operator:${tokenIdOf(broker.tokens[role])}`);
        expect(events[0]!.details["required_role"]).toBe(routeCase.role);
        expect(await registerSnapshot(broker)).toEqual(before);
      });
    }

    it.each(UNAUTHENTICATED)("$caller rejected with 401", async ({ caller, reason }) => {
      const { path, body } = await prepare();
      const before = await registerSnapshot(broker);
      const seq = await lastAuditSeq(broker);

      const response = await broker.request(method, path, { token: badTokens[caller].token, body });

      expectProblem(response, 401, "unauthenticated");
      expect(response.headers.get("www-authenticate")).toBe('Bearer realm="secrets-broker"');
      const events = await auditEventsAfter(broker, seq);
      expect(events).toHaveLength(1);
      expect(events[0]!.outcome).toBe("denied");
      expect(events[0]!.action).toBe("auth.authenticate");
      expect(events[0]!.actor).toBe("anonymous");
      expect(events[0]!.target).toBe(badTokens[caller].target);
      expect(events[0]!.details["reason"]).toBe(reason);
      expect(await registerSnapshot(broker)).toEqual(before);
    });
  });
});
