import { expect } from "vitest";
import { FUTURE_EXPIRY, uniqueName } from "../support/register-fixtures.js";
import type { TestBroker, TestResponse } from "../support/test-broker.js";
import { createWorkload, issueToken, type Workload } from "../tokens/oauth-fixtures.js";

/** Creates a secret through the API and returns its JSON; fails the test otherwise. */
export async function createSecret(broker: TestBroker, fields: Record<string, unknown> = {}): Promise<any> {
  const response = await broker.request("POST", "/v1/secrets", {
    token: broker.tokens.operator,
    body: { name: `test/${uniqueName("secret")}`, adapter: "local", kind: "static", owner: "team-payments", generate: { length: 32 }, ...fields },
  });
  expect(response.status, response.text).toBe(201);
  return response.json;
}

/** Creates a grant through the API and returns its JSON; fails the test otherwise. */
export async function createGrant(broker: TestBroker, fields: Record<string, unknown>): Promise<any> {
  const response = await broker.request("POST", "/v1/grants", {
    token: broker.tokens.operator,
    body: { approved_by: "alice@example.com", justification: "CHG-1234", ...fields },
  });
  expect(response.status, response.text).toBe(201);
  return response.json;
}

/** A registered workload with a live access token for the broker's own audience. */
export interface WorkloadWithToken {
  workload: Workload;
  accessToken: string;
  tokenLeaseId: string;
}

export async function workloadWithToken(
  broker: TestBroker,
  accountFields: Record<string, unknown> = {},
  tokenParams: Record<string, string> = {},
): Promise<WorkloadWithToken> {
  const workload = await createWorkload(broker, { allowed_scopes: ["secrets:read", "db:orders"], expires_at: FUTURE_EXPIRY, ...accountFields });
  const token = await issueToken(broker, workload, tokenParams);
  return { workload, accessToken: token.access_token, tokenLeaseId: token.lease_id };
}

/** POST /v1/credentials with the workload's access token. */
export function requestCredential(broker: TestBroker, accessToken: string | null, body: unknown): Promise<TestResponse> {
  return broker.request("POST", "/v1/credentials", { token: accessToken, body });
}

/** Obtains a credential and fails the test when the broker does not issue one. */
export async function obtainCredential(broker: TestBroker, accessToken: string, body: Record<string, unknown>): Promise<any> {
  const response = await requestCredential(broker, accessToken, body);
  expect(response.status, response.text).toBe(200);
  expect(response.headers.get("cache-control")).toBe("no-store");
  return response.json;
}

/** Reads a lease as the auditor. */
export async function readLease(broker: TestBroker, leaseId: string): Promise<any> {
  const response = await broker.request("GET", `/v1/leases/${leaseId}`, { token: broker.tokens.auditor });
  expect(response.status, response.text).toBe(200);
  return response.json;
}
