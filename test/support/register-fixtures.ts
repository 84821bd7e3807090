import { generateKeyPairSync } from "node:crypto";
import { expect } from "vitest";
import type { AuditEventView } from "../../broker/audit/audit-query.js";
import type { TestBroker, TestResponse } from "./test-broker.js";

/** An expiry well after the harness clock's start, for accounts that must stay valid. */
export const FUTURE_EXPIRY = "2027-06-01T00:00:00.000Z";

/** Tables of the register, the operator tokens, the secrets catalogue and the grants. A rejected request leaves them all unchanged. */
export const REGISTER_TABLES = [
  "applications",
  "service_accounts",
  "workload_keys",
  "trusted_issuers",
  "federated_subjects",
  "operator_tokens",
  "secrets",
  "secret_versions",
  "grants",
  "rotations",
] as const;

/**
 * OpenAPI tags of the register, trust, operator-token, audit, secrets, grants and rotations routes. Routes under other
 * tags, such as leases, also accept workload access tokens and are not in the foundation tables.
 */
export const FOUNDATION_TAGS = ["register", "trust", "operators", "audit", "secrets", "grants", "rotations", "incidents", "evidence"];

/** `METHOD /path` of every foundation operation in the broker's OpenAPI document. */
export async function documentedFoundationRoutes(broker: TestBroker): Promise<string[]> {
  const response = await broker.request("GET", "/openapi.json", { token: null });
  const paths = response.json.paths as Record<string, Record<string, { tags?: string[] }>>;
  return Object.entries(paths).flatMap(([path, operations]) =>
    Object.entries(operations)
      .filter(([, operation]) => operation.tags?.some((tag) => FOUNDATION_TAGS.includes(tag)))
      .map(([method]) => `${method.toUpperCase()} ${path}`),
  );
}

let nameSequence = 0;

/** Returns a register name that no other fixture in this test file has used. */
export function uniqueName(prefix: string): string {
  nameSequence += 1;
  return `${prefix}-${nameSequence}`;
}

/** Returns the `tok_...` id inside an operator bearer token. */
export function tokenIdOf(token: string): string {
  const match = /^sbo_(tok_[0-9a-f]{24})\./.exec(token);
  if (!match) {
    throw new Error("not an operator token");
  }
  return match[1]!;
}

export type KeyType = "ec-p256" | "ed25519" | "rsa-2048";

/** Generates a key pair and returns both halves as JWKs. */
export function generateJwkPair(type: KeyType): { publicJwk: Record<string, unknown>; privateJwk: Record<string, unknown> } {
  const pair =
    type === "ec-p256"
      ? generateKeyPairSync("ec", { namedCurve: "P-256" })
      : type === "ed25519"
        ? generateKeyPairSync("ed25519")
        : generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    publicJwk: pair.publicKey.export({ format: "jwk" }) as Record<string, unknown>,
    privateJwk: pair.privateKey.export({ format: "jwk" }) as Record<string, unknown>,
  };
}

export function publicJwk(type: KeyType = "ec-p256"): Record<string, unknown> {
  return generateJwkPair(type).publicJwk;
}

export async function createApplication(broker: TestBroker, fields: Record<string, unknown> = {}): Promise<{ id: string; name: string }> {
  const response = await broker.request("POST", "/v1/applications", {
    body: { name: uniqueName("app"), technical_owner: "team-orders@example.com", ...fields },
  });
  return expectCreated(response);
}

/** Registers a service account, under a new application unless `application_id` is given. */
export async function createServiceAccount(
  broker: TestBroker,
  fields: Record<string, unknown> = {},
): Promise<{ id: string; name: string; application_id: string }> {
  const applicationId = fields["application_id"] ?? (await createApplication(broker)).id;
  const response = await broker.request("POST", "/v1/service-accounts", {
    body: {
      name: uniqueName("sa"),
      technical_owner: "alice@example.com",
      expires_at: FUTURE_EXPIRY,
      ...fields,
      application_id: applicationId,
    },
  });
  return expectCreated(response);
}

export async function createTrustedIssuer(broker: TestBroker, fields: Record<string, unknown> = {}): Promise<{ id: string; issuer: string }> {
  const host = `${uniqueName("issuer")}.example.com`;
  const response = await broker.request("POST", "/v1/trusted-issuers", {
    body: { issuer: `https://${host}`, jwks_uri: `https://${host}/jwks`, ...fields },
  });
  return expectCreated(response);
}

export async function addWorkloadKey(broker: TestBroker, accountId: string, jwk = publicJwk()): Promise<{ id: string; kid: string }> {
  const response = await broker.request("POST", `/v1/service-accounts/${accountId}/keys`, { body: { jwk } });
  return expectCreated(response);
}

export async function addFederatedSubject(broker: TestBroker, accountId: string, issuer: string): Promise<{ id: string }> {
  const response = await broker.request("POST", `/v1/service-accounts/${accountId}/federated-subjects`, {
    body: { issuer, subject: uniqueName("system:serviceaccount:orders") },
  });
  return expectCreated(response);
}

export async function createOperatorToken(
  broker: TestBroker,
  fields: Record<string, unknown> = {},
): Promise<{ id: string; token: string; role: string }> {
  const response = await broker.request("POST", "/v1/operator-tokens", {
    body: { role: "auditor", name: uniqueName("token"), ...fields },
  });
  return expectCreated(response);
}

function expectCreated<T>(response: TestResponse): T {
  if (response.status !== 201) {
    throw new Error(`fixture request failed with ${response.status}: ${response.text}`);
  }
  return response.json as T;
}

/** Reads every row of the register tables, ordered by primary key, to compare before and after a request. */
export async function registerSnapshot(broker: TestBroker): Promise<Record<string, unknown[]>> {
  const snapshot: Record<string, unknown[]> = {};
  for (const table of REGISTER_TABLES) {
    const order = table === "secret_versions" ? "secret_id, version" : "id";
    snapshot[table] = await broker.query(`select * from ${table} order by ${order}`);
  }
  return snapshot;
}

export async function rowCount(broker: TestBroker, table: string): Promise<number> {
  const [row] = await broker.query<{ count: number }>(`select count(*)::int as count from ${table}`);
  return row!.count;
}

/** Sequence number of the newest audit event, once every committed event is chained. */
export async function lastAuditSeq(broker: TestBroker): Promise<number> {
  await broker.deps.auditChain.flush();
  const [row] = await broker.query<{ seq: number }>("select coalesce(max(seq), 0)::int as seq from audit_events");
  return row!.seq;
}

/** Reads audit events through the NDJSON export as an admin, filtered by the query string `query`. */
export async function auditEvents(broker: TestBroker, query = ""): Promise<AuditEventView[]> {
  const response = await broker.request("GET", `/v1/audit/events${query ? `?${query}` : ""}`);
  if (response.status !== 200) {
    throw new Error(`audit export failed with ${response.status}: ${response.text}`);
  }
  return response.text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as AuditEventView);
}

export function auditEventsAfter(broker: TestBroker, seq: number): Promise<AuditEventView[]> {
  return auditEvents(broker, `after_seq=${seq}`);
}

/** Checks that a response is an RFC 9457 problem with this status and code. */
export function expectProblem(response: TestResponse, status: number, code: string): void {
  expect(response.status, response.text).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  expect(response.json?.code).toBe(code);
}

/** Names of the fields a validation problem reports. */
export function invalidParamNames(response: TestResponse): string[] {
  return ((response.json?.invalid_params ?? []) as { name: string }[]).map((param) => param.name);
}
