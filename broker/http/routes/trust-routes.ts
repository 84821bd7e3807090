import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../../deps.js";
import {
  FederatedSubject,
  FederatedSubjectCreate,
  TrustedIssuer,
  TrustedIssuerCreate,
  WorkloadKey,
  WorkloadKeyCreate,
} from "../../register/trust-schemas.js";
import {
  addFederatedSubject,
  addWorkloadKey,
  createTrustedIssuer,
  deleteTrustedIssuer,
  getTrustedIssuer,
  listFederatedSubjects,
  listTrustedIssuers,
  listWorkloadKeys,
  removeFederatedSubject,
  removeWorkloadKey,
} from "../../register/trust-service.js";
import { idParams, idSchema, jsonBody, jsonResponse } from "../common-schemas.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../route-helpers.js";

const AccountId = idParams("sa", "service account");
const IssuerId = idParams("iss", "trusted issuer");
const KeyParams = AccountId.extend({
  kid: z.string().min(1).max(256).openapi({ param: { name: "kid", in: "path" } }),
});
const SubjectParams = AccountId.extend({
  subject_id: idSchema("fed", "federated subject").openapi({ param: { name: "subject_id", in: "path" } }),
});
const Deleted = { 204: { description: "Removed" } };

export function registerTrustRoutes(app: BrokerApp, deps: BrokerDeps): void {
  registerWorkloadKeyRoutes(app, deps);
  registerTrustedIssuerRoutes(app, deps);
  registerFederatedSubjectRoutes(app, deps);
}

function registerWorkloadKeyRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/service-accounts/{id}/keys",
      tags: ["trust"],
      summary: "Register a public key for private_key_jwt client assertions",
      description: "Accepts EC P-256, Ed25519 and RSA (2048 bits or more) public JWKs; private keys are rejected.",
      request: { params: AccountId, body: jsonBody(WorkloadKeyCreate) },
      responses: { 201: jsonResponse(WorkloadKey, "The registered key with its kid") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { jwk } = c.req.valid("json");
      const view = await inAuditedTransaction(deps, c, (tx, record) => addWorkloadKey(tx, deps.clock, record, id, jwk));
      return c.json(view, 201);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/service-accounts/{id}/keys",
      tags: ["trust"],
      summary: "List a service account's public keys",
      request: { params: AccountId },
      responses: { 200: jsonResponse(z.object({ items: z.array(WorkloadKey) }), "The account's keys") },
    }),
    async (c) => c.json({ items: await listWorkloadKeys(deps.db, c.req.valid("param").id) }, 200),
  );

  app.openapi(
    operatorRoute(deps, "operator", {
      method: "delete",
      path: "/v1/service-accounts/{id}/keys/{kid}",
      tags: ["trust"],
      summary: "Remove a public key",
      request: { params: KeyParams },
      responses: Deleted,
    }),
    async (c) => {
      const { id, kid } = c.req.valid("param");
      await inAuditedTransaction(deps, c, (tx, record) => removeWorkloadKey(tx, record, id, kid));
      return c.body(null, 204);
    },
  );
}

function registerTrustedIssuerRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/trusted-issuers",
      tags: ["trust"],
      summary: "Trust a token issuer (Kubernetes, GitHub Actions OIDC, SPIFFE) for token exchange",
      request: { body: jsonBody(TrustedIssuerCreate) },
      responses: { 201: jsonResponse(TrustedIssuer, "The trusted issuer") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const view = await inAuditedTransaction(deps, c, (tx, record) => createTrustedIssuer(tx, deps.clock, record, input));
      return c.json(view, 201);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/trusted-issuers",
      tags: ["trust"],
      summary: "List trusted issuers",
      responses: { 200: jsonResponse(z.object({ items: z.array(TrustedIssuer) }), "Every trusted issuer") },
    }),
    async (c) => c.json({ items: await listTrustedIssuers(deps.db) }, 200),
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/trusted-issuers/{id}",
      tags: ["trust"],
      summary: "Read a trusted issuer",
      request: { params: IssuerId },
      responses: { 200: jsonResponse(TrustedIssuer, "The trusted issuer") },
    }),
    async (c) => c.json(await getTrustedIssuer(deps.db, c.req.valid("param").id), 200),
  );

  app.openapi(
    operatorRoute(deps, "operator", {
      method: "delete",
      path: "/v1/trusted-issuers/{id}",
      tags: ["trust"],
      summary: "Stop trusting an issuer that no federated subject uses",
      request: { params: IssuerId },
      responses: Deleted,
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await inAuditedTransaction(deps, c, (tx, record) => deleteTrustedIssuer(tx, record, id));
      return c.body(null, 204);
    },
  );
}

function registerFederatedSubjectRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/service-accounts/{id}/federated-subjects",
      tags: ["trust"],
      summary: "Bind a subject of a trusted issuer to the service account",
      request: { params: AccountId, body: jsonBody(FederatedSubjectCreate) },
      responses: { 201: jsonResponse(FederatedSubject, "The binding") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = c.req.valid("json");
      const view = await inAuditedTransaction(deps, c, (tx, record) => addFederatedSubject(tx, deps.clock, record, id, input));
      return c.json(view, 201);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/service-accounts/{id}/federated-subjects",
      tags: ["trust"],
      summary: "List the federated subjects bound to a service account",
      request: { params: AccountId },
      responses: { 200: jsonResponse(z.object({ items: z.array(FederatedSubject) }), "The bindings") },
    }),
    async (c) => c.json({ items: await listFederatedSubjects(deps.db, c.req.valid("param").id) }, 200),
  );

  app.openapi(
    operatorRoute(deps, "operator", {
      method: "delete",
      path: "/v1/service-accounts/{id}/federated-subjects/{subject_id}",
      tags: ["trust"],
      summary: "Remove a federated subject binding",
      request: { params: SubjectParams },
      responses: Deleted,
    }),
    async (c) => {
      const { id, subject_id: subjectId } = c.req.valid("param");
      await inAuditedTransaction(deps, c, (tx, record) => removeFederatedSubject(tx, record, id, subjectId));
      return c.body(null, 204);
    },
  );
}
