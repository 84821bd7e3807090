import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEventView } from "../../broker/audit/audit-query.js";
import {
  addFederatedSubject,
  addWorkloadKey,
  auditEvents,
  auditEventsAfter,
  createApplication,
  createOperatorToken,
  createServiceAccount,
  createTrustedIssuer,
  FUTURE_EXPIRY,
  generateJwkPair,
  lastAuditSeq,
  tokenIdOf,
  uniqueName,
} from "../support/register-fixtures.js";
import { startTestBroker, TEST_NOW, type TestBroker, type TestResponse } from "../support/test-broker.js";

/** What a change must leave in the audit log. */
interface ExpectedEvent {
  action: string;
  target: string | null;
  details?: Record<string, unknown>;
}

describe("audit events", () => {
  let broker: TestBroker;
  let operatorActor: string;
  let adminActor: string;

  beforeAll(async () => {
    broker = await startTestBroker();
    operatorActor = `operator:${tokenIdOf(broker.tokens.operator)}`;
    adminActor = `operator:${tokenIdOf(broker.tokens.admin)}`;
  });

  afterAll(async () => {
    await broker.close();
  });

  /** Runs one change and returns the response with the audit events it wrote. */
  async function recordChange(change: () => Promise<TestResponse>): Promise<{ response: TestResponse; events: AuditEventView[] }> {
    const seq = await lastAuditSeq(broker);
    const response = await change();
    return { response, events: await auditEventsAfter(broker, seq) };
  }

  function expectOneEvent(
    { response, events }: { response: TestResponse; events: AuditEventView[] },
    expected: ExpectedEvent,
    actor: string,
  ): void {
    expect(response.status, response.text).toBeLessThan(300);
    expect(events).toHaveLength(1);
    expect(events[0]!.action).toBe(expected.action);
    expect(events[0]!.target).toBe(expected.target);
    expect(events[0]!.actor).toBe(actor);
    expect(events[0]!.outcome).toBe("success");
    expect(events[0]!.occurred_at).toBe(TEST_NOW);
    expect(events[0]!.request_id).toBe(response.headers.get("x-request-id"));
    if (expected.details) {
      expect(events[0]!.details).toMatchObject(expected.details);
    }
  }

  function asOperator(method: string, path: string, body?: unknown): () => Promise<TestResponse> {
    return () => broker.request(method, path, { token: broker.tokens.operator, body });
  }

  it("application create", async () => {
    const name = uniqueName("orders");

    const change = await recordChange(asOperator("POST", "/v1/applications", { name, technical_owner: "team@example.com" }));

    expectOneEvent(change, { action: "application.create", target: change.response.json.id, details: { name } }, operatorActor);
  });

  it("application update", async () => {
    const application = await createApplication(broker);

    const change = await recordChange(asOperator("PATCH", `/v1/applications/${application.id}`, { regulated: true, criticality: "high" }));

    expectOneEvent(
      change,
      { action: "application.update", target: application.id, details: { fields: ["criticality", "regulated"] } },
      operatorActor,
    );
  });

  it("service account create", async () => {
    const application = await createApplication(broker);
    const body = { name: uniqueName("orders-api"), application_id: application.id, technical_owner: "a@example.com", expires_at: FUTURE_EXPIRY, kind: "ci" };

    const change = await recordChange(asOperator("POST", "/v1/service-accounts", body));

    expectOneEvent(
      change,
      {
        action: "service_account.create",
        target: change.response.json.id,
        details: { name: body.name, application_id: application.id, kind: "ci", privileged: false },
      },
      operatorActor,
    );
  });

  it("service account update", async () => {
    const account = await createServiceAccount(broker);

    const change = await recordChange(asOperator("PATCH", `/v1/service-accounts/${account.id}`, { max_token_ttl: 120, privileged: true }));

    expectOneEvent(
      change,
      { action: "service_account.update", target: account.id, details: { fields: ["max_token_ttl", "privileged"] } },
      operatorActor,
    );
  });

  it.each([
    { change: "suspend", setup: [], from: "active", to: "suspended" },
    { change: "activate", setup: ["suspend"], from: "suspended", to: "active" },
    { change: "decommission", setup: ["suspend"], from: "suspended", to: "decommissioned" },
  ])("service account $change", async ({ change: statusChange, setup, from, to }) => {
    const account = await createServiceAccount(broker);
    for (const step of setup) {
      await broker.request("POST", `/v1/service-accounts/${account.id}/${step}`);
    }

    const change = await recordChange(asOperator("POST", `/v1/service-accounts/${account.id}/${statusChange}`, { reason: "ticket OPS-1234" }));

    expectOneEvent(
      change,
      {
        action: `service_account.${statusChange}`,
        target: account.id,
        details: { from_status: from, to_status: to, reason: "ticket OPS-1234" },
      },
      operatorActor,
    );
  });

  it("workload key add", async () => {
    const account = await createServiceAccount(broker);
    const { publicJwk } = generateJwkPair("rsa-2048");

    const change = await recordChange(asOperator("POST", `/v1/service-accounts/${account.id}/keys`, { jwk: publicJwk }));

    expectOneEvent(
      change,
      {
        action: "workload_key.add",
        target: account.id,
        details: { key_id: change.response.json.id, kid: change.response.json.kid, alg: "RS256" },
      },
      operatorActor,
    );
  });

  it("workload key remove", async () => {
    const account = await createServiceAccount(broker);
    const key = await addWorkloadKey(broker, account.id);

    const change = await recordChange(asOperator("DELETE", `/v1/service-accounts/${account.id}/keys/${key.kid}`));

    expectOneEvent(change, { action: "workload_key.remove", target: account.id, details: { key_id: key.id, kid: key.kid } }, operatorActor);
  });

  it("trusted issuer create", async () => {
    const { publicJwk } = generateJwkPair("ec-p256");
    const issuer = `https://${uniqueName("cluster")}.example.com`;

    const change = await recordChange(asOperator("POST", "/v1/trusted-issuers", { issuer, jwks: { keys: [publicJwk] } }));

    expectOneEvent(
      change,
      { action: "trusted_issuer.create", target: change.response.json.id, details: { issuer, jwks_uri: null, inline_keys: 1 } },
      operatorActor,
    );
  });

  it("trusted issuer delete", async () => {
    const issuer = await createTrustedIssuer(broker);

    const change = await recordChange(asOperator("DELETE", `/v1/trusted-issuers/${issuer.id}`));

    expectOneEvent(change, { action: "trusted_issuer.delete", target: issuer.id }, operatorActor);
  });

  it("federated subject add", async () => {
    const account = await createServiceAccount(broker);
    const issuer = await createTrustedIssuer(broker);
    const body = { issuer: issuer.issuer, subject: "repo:example/orders:ref:refs/heads/main", claims: { repository_id: "42" } };

    const change = await recordChange(asOperator("POST", `/v1/service-accounts/${account.id}/federated-subjects`, body));

    expectOneEvent(
      change,
      {
        action: "federated_subject.add",
        target: account.id,
        details: { federated_subject_id: change.response.json.id, issuer: issuer.issuer, subject: body.subject, claims: body.claims },
      },
      operatorActor,
    );
  });

  it("federated subject remove", async () => {
    const account = await createServiceAccount(broker);
    const issuer = await createTrustedIssuer(broker);
    const subject = await addFederatedSubject(broker, account.id, issuer.issuer);

    const change = await recordChange(asOperator("DELETE", `/v1/service-accounts/${account.id}/federated-subjects/${subject.id}`));

    expectOneEvent(change, { action: "federated_subject.remove", target: account.id, details: { federated_subject_id: subject.id } }, operatorActor);
  });

  it("operator token create", async () => {
    const name = uniqueName("nightly-export");

    const change = await recordChange(() => broker.request("POST", "/v1/operator-tokens", { body: { role: "auditor", name } }));

    expectOneEvent(change, { action: "operator_token.create", target: change.response.json.id, details: { role: "auditor", name } }, adminActor);
  });

  it("operator token revoke", async () => {
    const token = await createOperatorToken(broker, { role: "operator" });

    const change = await recordChange(() => broker.request("POST", `/v1/operator-tokens/${token.id}/revoke`));

    expectOneEvent(change, { action: "operator_token.revoke", target: token.id, details: { role: "operator" } }, adminActor);
  });

  it("import writes one event per entry and summary", async () => {
    const { publicJwk } = generateJwkPair("ed25519");
    const issuer = `https://${uniqueName("actions")}.example.com`;
    const estate = {
      applications: [{ name: uniqueName("billing"), technical_owner: "team-billing@example.com" }],
      trusted_issuers: [{ issuer, jwks_uri: `${issuer}/jwks` }],
      service_accounts: [
        {
          name: uniqueName("billing-ci"),
          application: "",
          technical_owner: "carol@example.com",
          expires_at: FUTURE_EXPIRY,
          keys: [publicJwk],
          federated_subjects: [{ issuer, subject: "repo:example/billing:ref:refs/heads/main" }],
        },
      ],
    };
    estate.service_accounts[0]!.application = estate.applications[0]!.name;

    const { response, events } = await recordChange(asOperator("POST", "/v1/import", estate));

    expect(response.status, response.text).toBe(200);
    expect(events.map((event) => event.action)).toEqual([
      "application.create",
      "trusted_issuer.create",
      "service_account.create",
      "workload_key.add",
      "federated_subject.add",
      "estate.import",
    ]);
    expect(events.every((event) => event.actor === operatorActor)).toBe(true);
    expect(events.every((event) => event.outcome === "success")).toBe(true);
    expect(events[0]!.target).toBe(response.json.applications[0].id);
    expect(events[2]!.target).toBe(response.json.service_accounts[0].id);
    expect(events[5]!.target).toBeNull();
    expect(events[5]!.details).toEqual({ applications: 1, trusted_issuers: 1, service_accounts: 1, grants: 0 });
  });

  it("failed change writes no event", async () => {
    const account = await createServiceAccount(broker);

    const { response, events } = await recordChange(asOperator("POST", `/v1/service-accounts/${account.id}/activate`));

    expect(response.status).toBe(409);
    expect(events).toEqual([]);
  });

  it("export filters by actor, action and target", async () => {
    const account = await createServiceAccount(broker);
    await broker.request("POST", `/v1/service-accounts/${account.id}/suspend`, { token: broker.tokens.operator });

    const byTarget = await auditEvents(broker, `target=${account.id}`);
    const byActorAndAction = await auditEvents(broker, `actor=${operatorActor}&action=service_account.suspend`);

    expect(byTarget.map((event) => event.action)).toEqual(["service_account.create", "service_account.suspend"]);
    expect(byActorAndAction.length).toBeGreaterThan(0);
    expect(byActorAndAction.every((event) => event.actor === operatorActor && event.action === "service_account.suspend")).toBe(true);
  });

  it("no event contains token or key material", async () => {
    const account = await createServiceAccount(broker);
    const rsa = generateJwkPair("rsa-2048");
    const ec = generateJwkPair("ec-p256");
    await addWorkloadKey(broker, account.id, rsa.publicJwk);
    await broker.request("POST", `/v1/service-accounts/${account.id}/keys`, { body: { jwk: ec.privateJwk } });
    await createTrustedIssuer(broker, { jwks: { keys: [ec.publicJwk] }, jwks_uri: undefined });
    const created = await createOperatorToken(broker);
    await broker.request("POST", `/v1/operator-tokens/${created.id}/revoke`);
    const wrongSecret = `sbo_${created.id}.${"B".repeat(43)}`;
    await broker.request("GET", "/v1/applications", { token: created.token });
    await broker.request("GET", "/v1/applications", { token: wrongSecret });
    const tokens = [...Object.values(broker.tokens), created.token, wrongSecret];
    const sensitive = [
      ...tokens,
      ...tokens.map((token) => token.split(".")[1]!),
      String(rsa.publicJwk["n"]),
      String(ec.publicJwk["x"]),
      String(ec.publicJwk["y"]),
      String(ec.privateJwk["d"]),
    ];

    const log = JSON.stringify(await auditEvents(broker));

    expect(log).toContain(created.id);
    for (const value of sensitive) {
      expect(log).not.toContain(value);
    }
  });
});
