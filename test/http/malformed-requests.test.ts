import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_BODY_LIMIT_BYTES } from "../../broker/config/config.js";
import { ESTATE_BODY_LIMIT_BYTES } from "../../broker/http/routes/estate-routes.js";
import {
  addFederatedSubject,
  addWorkloadKey,
  createApplication,
  createOperatorToken,
  createServiceAccount,
  createTrustedIssuer,
  documentedFoundationRoutes,
  expectProblem,
  FUTURE_EXPIRY,
  invalidParamNames,
  publicJwk,
  registerSnapshot,
} from "../support/register-fixtures.js";
import { createGrant, createSecret } from "../credentials/credential-fixtures.js";
import { type RequestOptions, startTestBroker, type TestBroker, type TestResponse } from "../support/test-broker.js";

/** Ids of the register records that the malformed requests target. None of them may change. */
interface Fixtures {
  applicationId: string;
  accountId: string;
  kid: string;
  issuerId: string;
  issuer: string;
  subjectId: string;
  tokenId: string;
  secretId: string;
  secretName: string;
  grantId: string;
}

interface MutatingRoute {
  route: string;
  path: (fixtures: Fixtures) => string;
  /** A body the route accepts. The malformed variants are built from it. */
  validBody: (fixtures: Fixtures) => Record<string, unknown>;
  wrongType: { body: unknown; field: string };
  limit: number;
  /** The path with one id malformed, and the parameter the error names. */
  malformedPath?: { path: (fixtures: Fixtures) => string; field: string };
  /** The path with a well-formed id that matches no record. */
  unknownPath?: (fixtures: Fixtures) => string;
}

const UNKNOWN_APP = "app_0123456789abcdef01234567";
const UNKNOWN_ACCOUNT = "sa_0123456789abcdef01234567";
const UNKNOWN_ISSUER = "iss_0123456789abcdef01234567";
const UNKNOWN_SUBJECT = "fed_0123456789abcdef01234567";
const UNKNOWN_TOKEN = "tok_0123456789abcdef01234567";
const UNKNOWN_SECRET = "sec_0123456789abcdef01234567";
const UNKNOWN_GRANT = "grt_0123456789abcdef01234567";

const ROUTES: MutatingRoute[] = [
  {
    route: "POST /v1/applications",
    path: () => "/v1/applications",
    validBody: () => ({ name: "payments", technical_owner: "team-payments@example.com" }),
    wrongType: { body: { name: "payments", technical_owner: ["team"] }, field: "technical_owner" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
  },
  {
    route: "PATCH /v1/applications/{id}",
    path: (f) => `/v1/applications/${f.applicationId}`,
    validBody: () => ({ criticality: "high" }),
    wrongType: { body: { regulated: "true" }, field: "regulated" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: (f) => `/v1/applications/${f.accountId}`, field: "id" },
    unknownPath: () => `/v1/applications/${UNKNOWN_APP}`,
  },
  {
    route: "POST /v1/service-accounts",
    path: () => "/v1/service-accounts",
    validBody: (f) => ({ name: "payments-api", application_id: f.applicationId, technical_owner: "bob@example.com", expires_at: FUTURE_EXPIRY }),
    wrongType: {
      body: { name: "payments-api", application_id: UNKNOWN_APP, technical_owner: "bob@example.com", expires_at: FUTURE_EXPIRY, max_token_ttl: "900" },
      field: "max_token_ttl",
    },
    limit: DEFAULT_BODY_LIMIT_BYTES,
  },
  {
    route: "PATCH /v1/service-accounts/{id}",
    path: (f) => `/v1/service-accounts/${f.accountId}`,
    validBody: () => ({ privileged: true }),
    wrongType: { body: { allowed_scopes: { read: true } }, field: "allowed_scopes" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: (f) => `/v1/service-accounts/${f.applicationId}`, field: "id" },
    unknownPath: () => `/v1/service-accounts/${UNKNOWN_ACCOUNT}`,
  },
  ...["suspend", "activate", "decommission"].map(
    (change): MutatingRoute => ({
      route: `POST /v1/service-accounts/{id}/${change}`,
      path: (f) => `/v1/service-accounts/${f.accountId}/${change}`,
      validBody: () => ({ reason: "quarterly access review" }),
      wrongType: { body: { reason: 42 }, field: "reason" },
      limit: DEFAULT_BODY_LIMIT_BYTES,
      malformedPath: { path: () => `/v1/service-accounts/orders-api/${change}`, field: "id" },
      unknownPath: () => `/v1/service-accounts/${UNKNOWN_ACCOUNT}/${change}`,
    }),
  ),
  {
    route: "POST /v1/service-accounts/{id}/keys",
    path: (f) => `/v1/service-accounts/${f.accountId}/keys`,
    validBody: () => ({ jwk: publicJwk() }),
    wrongType: { body: { jwk: "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" }, field: "jwk" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: () => "/v1/service-accounts/sa_123/keys", field: "id" },
    unknownPath: () => `/v1/service-accounts/${UNKNOWN_ACCOUNT}/keys`,
  },
  {
    route: "DELETE /v1/service-accounts/{id}/keys/{kid}",
    path: (f) => `/v1/service-accounts/${f.accountId}/keys/${f.kid}`,
    validBody: () => ({}),
    wrongType: { body: "remove", field: "body" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: (f) => `/v1/service-accounts/${f.accountId}/keys/${"k".repeat(257)}`, field: "kid" },
    unknownPath: (f) => `/v1/service-accounts/${f.accountId}/keys/no-such-kid`,
  },
  {
    route: "POST /v1/trusted-issuers",
    path: () => "/v1/trusted-issuers",
    validBody: () => ({ issuer: "https://token.actions.githubusercontent.com", jwks_uri: "https://token.actions.githubusercontent.com/.well-known/jwks" }),
    wrongType: { body: { issuer: "https://kubernetes.default.svc", jwks: { keys: {} } }, field: "jwks.keys" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
  },
  {
    route: "DELETE /v1/trusted-issuers/{id}",
    path: (f) => `/v1/trusted-issuers/${f.issuerId}`,
    validBody: () => ({}),
    wrongType: { body: ["remove"], field: "body" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: () => "/v1/trusted-issuers/https%3A%2F%2Fissuer.example.com", field: "id" },
    unknownPath: () => `/v1/trusted-issuers/${UNKNOWN_ISSUER}`,
  },
  {
    route: "POST /v1/service-accounts/{id}/federated-subjects",
    path: (f) => `/v1/service-accounts/${f.accountId}/federated-subjects`,
    validBody: (f) => ({ issuer: f.issuer, subject: "system:serviceaccount:payments:api" }),
    wrongType: { body: { issuer: "https://issuer.example.com", subject: 7 }, field: "subject" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: () => "/v1/service-accounts/SA_0123456789ABCDEF01234567/federated-subjects", field: "id" },
    unknownPath: () => `/v1/service-accounts/${UNKNOWN_ACCOUNT}/federated-subjects`,
  },
  {
    route: "DELETE /v1/service-accounts/{id}/federated-subjects/{subject_id}",
    path: (f) => `/v1/service-accounts/${f.accountId}/federated-subjects/${f.subjectId}`,
    validBody: () => ({}),
    wrongType: { body: null, field: "body" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: (f) => `/v1/service-accounts/${f.accountId}/federated-subjects/fed_1`, field: "subject_id" },
    unknownPath: (f) => `/v1/service-accounts/${f.accountId}/federated-subjects/${UNKNOWN_SUBJECT}`,
  },
  {
    route: "POST /v1/operator-tokens",
    path: () => "/v1/operator-tokens",
    validBody: () => ({ role: "auditor", name: "quarterly-audit" }),
    wrongType: { body: { role: "auditor", name: { first: "audit" } }, field: "name" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
  },
  {
    route: "POST /v1/operator-tokens/{id}/revoke",
    path: (f) => `/v1/operator-tokens/${f.tokenId}/revoke`,
    validBody: () => ({}),
    wrongType: { body: true, field: "body" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: (f) => `/v1/operator-tokens/sbo_${f.tokenId}/revoke`, field: "id" },
    unknownPath: () => `/v1/operator-tokens/${UNKNOWN_TOKEN}/revoke`,
  },
  {
    route: "POST /v1/import",
    path: () => "/v1/import",
    validBody: () => ({ applications: [{ name: "imported", technical_owner: "team@example.com" }] }),
    wrongType: { body: { applications: { name: "imported" } }, field: "applications" },
    limit: ESTATE_BODY_LIMIT_BYTES,
  },
  {
    route: "POST /v1/secrets",
    path: () => "/v1/secrets",
    validBody: () => ({ name: "payments/api-key", adapter: "local", owner: "team-payments", generate: { length: 32 } }),
    wrongType: { body: { name: "payments/api-key", adapter: "local", owner: "team-payments", generate: {}, default_ttl: "600" }, field: "default_ttl" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
  },
  {
    route: "PATCH /v1/secrets/{id}",
    path: (f) => `/v1/secrets/${f.secretId}`,
    validBody: () => ({ owner: "team-new" }),
    wrongType: { body: { max_ttl: "3600" }, field: "max_ttl" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: (f) => `/v1/secrets/${f.secretName.replaceAll("/", "%2F")}`, field: "id" },
    unknownPath: () => `/v1/secrets/${UNKNOWN_SECRET}`,
  },
  {
    route: "DELETE /v1/secrets/{id}",
    path: (f) => `/v1/secrets/${f.secretId}`,
    validBody: () => ({ reason: "decommissioned" }),
    wrongType: { body: { reason: 42 }, field: "reason" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: () => "/v1/secrets/sec_1", field: "id" },
    unknownPath: () => `/v1/secrets/${UNKNOWN_SECRET}`,
  },
  {
    route: "POST /v1/fingerprints",
    path: () => "/v1/fingerprints",
    validBody: () => ({ value: "leaked-value" }),
    wrongType: { body: { value: ["leaked-value"] }, field: "value" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
  },
  {
    route: "POST /v1/grants",
    path: () => "/v1/grants",
    validBody: (f) => ({ service_account_id: f.accountId, secret: f.secretName }),
    wrongType: { body: { service_account_id: UNKNOWN_ACCOUNT, secret: "payments/api-key", scopes: "read" }, field: "scopes" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
  },
  {
    route: "PATCH /v1/grants/{id}",
    path: (f) => `/v1/grants/${f.grantId}`,
    validBody: () => ({ justification: "CHG-77" }),
    wrongType: { body: { max_ttl: "600" }, field: "max_ttl" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: (f) => `/v1/grants/${f.secretId}`, field: "id" },
    unknownPath: () => `/v1/grants/${UNKNOWN_GRANT}`,
  },
  {
    route: "POST /v1/secrets/{id}/rotate",
    path: (f) => `/v1/secrets/${f.secretId}/rotate`,
    validBody: () => ({ reason: "quarterly", mode: "normal" }),
    wrongType: { body: { mode: true }, field: "mode" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: () => "/v1/secrets/payments%2Fapi-key/rotate", field: "id" },
    unknownPath: () => `/v1/secrets/${UNKNOWN_SECRET}/rotate`,
  },
  {
    route: "POST /v1/secrets/{id}/resync",
    path: (f) => `/v1/secrets/${f.secretId}/resync`,
    validBody: () => ({ reason: "written by hand" }),
    wrongType: { body: { reason: 42 }, field: "reason" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: () => "/v1/secrets/payments%2Fapi-key/resync", field: "id" },
    unknownPath: () => `/v1/secrets/${UNKNOWN_SECRET}/resync`,
  },
  {
    route: "POST /v1/secrets/{id}/external-rotation/refresh",
    path: (f) => `/v1/secrets/${f.secretId}/external-rotation/refresh`,
    validBody: () => ({ reason: "AWS rotation turned off" }),
    wrongType: { body: { reason: 42 }, field: "reason" },
    limit: DEFAULT_BODY_LIMIT_BYTES,
    malformedPath: { path: () => "/v1/secrets/payments%2Fapi-key/external-rotation/refresh", field: "id" },
    unknownPath: () => `/v1/secrets/${UNKNOWN_SECRET}/external-rotation/refresh`,
  },
  ...(["DELETE /v1/grants/{id}", "POST /v1/grants/{id}/revoke"] as const).map(
    (route): MutatingRoute => ({
      route,
      path: (f) => route.split(" ")[1]!.replace("{id}", f.grantId),
      validBody: () => ({ reason: "access review" }),
      wrongType: { body: { reason: false }, field: "reason" },
      limit: DEFAULT_BODY_LIMIT_BYTES,
      malformedPath: { path: () => route.split(" ")[1]!.replace("{id}", "grt_123"), field: "id" },
      unknownPath: () => route.split(" ")[1]!.replace("{id}", UNKNOWN_GRANT),
    }),
  ),
];

/** Returns a JSON object of exactly `bytes` bytes. */
function jsonOfSize(bytes: number): string {
  const frame = '{"pad":""}';
  return `{"pad":"${"x".repeat(bytes - frame.length)}"}`;
}

describe("malformed requests", () => {
  let broker: TestBroker;
  let fixtures: Fixtures;

  beforeAll(async () => {
    broker = await startTestBroker();
    const application = await createApplication(broker);
    const account = await createServiceAccount(broker, { application_id: application.id });
    const key = await addWorkloadKey(broker, account.id);
    const boundIssuer = await createTrustedIssuer(broker);
    const subject = await addFederatedSubject(broker, account.id, boundIssuer.issuer);
    const unusedIssuer = await createTrustedIssuer(broker);
    const token = await createOperatorToken(broker);
    const secret = await createSecret(broker);
    const grant = await createGrant(broker, { service_account_id: account.id, secret: secret.name });
    fixtures = {
      applicationId: application.id,
      accountId: account.id,
      kid: key.kid,
      issuerId: unusedIssuer.id,
      issuer: boundIssuer.issuer,
      subjectId: subject.id,
      tokenId: token.id,
      secretId: secret.id,
      secretName: secret.name,
      grantId: grant.id,
    };
  });

  afterAll(async () => {
    await broker.close();
  });

  /** Sends the request and checks that the register is exactly as before. */
  async function sendUnchanged(method: string, path: string, options: RequestOptions): Promise<TestResponse> {
    const before = await registerSnapshot(broker);
    const response = await broker.request(method, path, options);
    expect(await registerSnapshot(broker)).toEqual(before);
    return response;
  }

  const JSON_TYPE = { "content-type": "application/json" };

  it("covers every foundation route that changes state", async () => {
    const documented = await documentedFoundationRoutes(broker);

    expect(documented.filter((route) => !route.startsWith("GET ")).sort()).toEqual(ROUTES.map((route) => route.route).sort());
  });

  describe.each(ROUTES)("$route", (route) => {
    const method = route.route.split(" ")[0]!;

    it("invalid JSON returns 400", async () => {
      const response = await sendUnchanged(method, route.path(fixtures), { rawBody: '{"name": "payments",', headers: JSON_TYPE });

      expectProblem(response, 400, "invalid_json");
    });

    it("empty body with JSON type returns 400", async () => {
      const response = await sendUnchanged(method, route.path(fixtures), { rawBody: "", headers: { ...JSON_TYPE, "content-length": "0" } });

      expectProblem(response, 400, "invalid_json");
    });

    it("array body returns 400", async () => {
      const response = await sendUnchanged(method, route.path(fixtures), { body: [route.validBody(fixtures)] });

      expectProblem(response, 400, "validation_failed");
      expect(invalidParamNames(response)).toEqual(["body"]);
    });

    it("wrong type returns 400", async () => {
      const response = await sendUnchanged(method, route.path(fixtures), { body: route.wrongType.body });

      expectProblem(response, 400, "validation_failed");
      expect(invalidParamNames(response)).toEqual([route.wrongType.field]);
    });

    it("unknown field returns 400", async () => {
      const response = await sendUnchanged(method, route.path(fixtures), { body: { ...route.validBody(fixtures), unexpected: true } });

      expectProblem(response, 400, "validation_failed");
      expect(invalidParamNames(response)).toEqual(["unexpected"]);
    });

    it("body over limit returns 413", async () => {
      const response = await sendUnchanged(method, route.path(fixtures), { rawBody: jsonOfSize(route.limit + 1), headers: JSON_TYPE });

      expectProblem(response, 413, "payload_too_large");
    });

    it.each(["text/plain", "application/x-www-form-urlencoded", "application/jsonp", "application/merge-patch+json", "application/json;", "application/json; charset"])(
      "content type %s returns 415",
      async (contentType) => {
        const response = await sendUnchanged(method, route.path(fixtures), {
          rawBody: JSON.stringify(route.validBody(fixtures)),
          headers: { "content-type": contentType },
        });

        expectProblem(response, 415, "unsupported_media_type");
      },
    );

    const { malformedPath, unknownPath } = route;
    if (malformedPath) {
      it("malformed id returns 400", async () => {
        const response = await sendUnchanged(method, malformedPath.path(fixtures), { body: route.validBody(fixtures) });

        expectProblem(response, 400, "validation_failed");
        expect(invalidParamNames(response)).toEqual([malformedPath.field]);
      });
    }

    if (unknownPath) {
      it("unknown id returns 404", async () => {
        const response = await sendUnchanged(method, unknownPath(fixtures), { body: route.validBody(fixtures) });

        expectProblem(response, 404, "not_found");
      });
    }
  });

  it.each([
    { case: "plain word", id: "orders" },
    { case: "short random part", id: "app_0123" },
    { case: "uppercase hex", id: "app_0123456789ABCDEF01234567" },
    { case: "wrong prefix", id: "tok_0123456789abcdef01234567" },
    { case: "trailing character", id: "app_0123456789abcdef01234567x" },
    { case: "percent-encoded NUL", id: "app_%00" },
    { case: "SQL fragment", id: "app_1'%20or%20'1'='1" },
  ])("application id $case returns 400", async ({ id }) => {
    const response = await sendUnchanged("PATCH", `/v1/applications/${id}`, { body: { criticality: "high" } });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual(["id"]);
  });

  it.each(["application/json; charset=utf-8", "Application/JSON"])("content type %s accepted", async (contentType) => {
    const response = await broker.request("POST", "/v1/applications", {
      rawBody: JSON.stringify({ name: `accepted-${contentType.length}`, technical_owner: "team@example.com" }),
      headers: { "content-type": contentType },
    });

    expect(response.status, response.text).toBe(201);
  });

  it("unknown route returns 404 problem", async () => {
    const response = await broker.request("POST", "/v1/no-such-resource", { body: { name: "orders" } });

    expectProblem(response, 404, "not_found");
  });
});
