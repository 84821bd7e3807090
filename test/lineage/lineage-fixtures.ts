import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, type CryptoKey, SignJWT } from "jose";
import { expect } from "vitest";
import type { TestBroker, TestResponse } from "../support/test-broker.js";

/** An account expiry well after the test clock's start. */
export const ACCOUNT_EXPIRY = "2027-06-01T00:00:00.000Z";
export const CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/** Lifetime of a client assertion, in seconds. The broker accepts at most 300. */
const ASSERTION_LIFETIME_SECONDS = 60;

/** A service account with a registered ES256 key, able to obtain access tokens. */
export interface Workload {
  accountId: string;
  applicationId: string;
  kid: string;
  privateKey: CryptoKey;
}

let nameSequence = 0;

export function uniqueName(prefix: string): string {
  nameSequence += 1;
  return `${prefix}-${nameSequence}`;
}

export function expectStatus(response: TestResponse, status: number): any {
  expect(response.status, response.text).toBe(status);
  return response.json;
}

export async function createApplication(broker: TestBroker, fields: Record<string, unknown> = {}): Promise<string> {
  const response = await broker.request("POST", "/v1/applications", {
    body: { name: uniqueName("lineage-app"), technical_owner: "team-apps@example.com", ...fields },
  });
  return expectStatus(response, 201).id;
}

/** Registers a service account under `applicationId` (a new application when omitted) with an ES256 key. */
export async function createWorkload(
  broker: TestBroker,
  options: { applicationId?: string; account?: Record<string, unknown> } = {},
): Promise<Workload> {
  const applicationId = options.applicationId ?? (await createApplication(broker));
  const account = expectStatus(
    await broker.request("POST", "/v1/service-accounts", {
      body: {
        name: uniqueName("lineage-sa"),
        application_id: applicationId,
        technical_owner: "alice@example.com",
        expires_at: ACCOUNT_EXPIRY,
        allowed_audiences: ["https://api.example.com"],
        allowed_scopes: ["orders.read", "orders.write"],
        ...options.account,
      },
    }),
    201,
  );

  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const kid = uniqueName("key");
  const jwk = { ...(await exportJWK(publicKey)), kid };
  expectStatus(await broker.request("POST", `/v1/service-accounts/${account.id}/keys`, { body: { jwk } }), 201);
  return { accountId: account.id, applicationId, kid, privateKey };
}

/** Signs an RFC 7523 client assertion at the broker clock's current time. */
export async function clientAssertion(broker: TestBroker, workload: Workload): Promise<string> {
  const now = Math.floor(broker.clock.now().getTime() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: "ES256", kid: workload.kid })
    .setIssuer(workload.accountId)
    .setSubject(workload.accountId)
    .setAudience(broker.deps.config.issuer)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + ASSERTION_LIFETIME_SECONDS)
    .sign(workload.privateKey);
}

/** Obtains an access token through POST /v1/token (client_credentials) and returns the token response. */
export async function issueToken(
  broker: TestBroker,
  workload: Workload,
  form: Record<string, string> = {},
): Promise<{ access_token: string; lease_id: string; expires_in: number }> {
  const body = new URLSearchParams({
    grant_type: "client_credentials",
    client_assertion_type: CLIENT_ASSERTION_TYPE,
    client_assertion: await clientAssertion(broker, workload),
    ...form,
  }).toString();
  const response = await broker.request("POST", "/v1/token", {
    token: null,
    rawBody: body,
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });
  return expectStatus(response, 200);
}

/** Renews a lease as the admin and returns the renewal response, which holds a new access token. */
export async function renewLease(broker: TestBroker, leaseId: string, increment: number): Promise<{ access_token: string; expires_at: string }> {
  return expectStatus(await broker.request("POST", `/v1/leases/${leaseId}/renew`, { body: { increment } }), 200);
}

export async function revokeLease(broker: TestBroker, leaseId: string, reason?: string): Promise<void> {
  const body = reason === undefined ? {} : { reason };
  expectStatus(await broker.request("POST", `/v1/leases/${leaseId}/revoke`, { body }), 200);
}

/** Requests GET /v1/lineage with the given query, as the auditor unless a token is given. */
export function exportLineage(broker: TestBroker, query: Record<string, string> = {}, token: string = broker.tokens.auditor): Promise<TestResponse> {
  return broker.request("GET", `/v1/lineage?${new URLSearchParams(query)}`, { token });
}

/** Parses NDJSON text into objects, one per non-empty line. */
export function parseNdjson(text: string): any[] {
  return text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line));
}

/**
 * Parses RFC 4180 CSV: quoted fields may hold commas, CRLF and doubled quotes, and
 * records end with CRLF. Throws on text that breaks the grammar, such as a quote
 * inside an unquoted field, so that a test fails on malformed output.
 */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let position = 0;

  while (position < text.length) {
    let field = "";
    if (text[position] === '"') {
      position += 1;
      while (true) {
        const quote = text.indexOf('"', position);
        if (quote === -1) throw new Error(`unterminated quoted field at offset ${position}`);
        field += text.slice(position, quote);
        position = quote + 1;
        if (text[position] !== '"') break;
        field += '"';
        position += 1;
      }
    } else {
      const end = text.slice(position).search(/[,\r\n]/);
      field = end === -1 ? text.slice(position) : text.slice(position, position + end);
      if (field.includes('"')) throw new Error(`quote inside an unquoted field at offset ${position}`);
      position += field.length;
    }
    record.push(field);

    if (text[position] === ",") {
      position += 1;
      continue;
    }
    if (text.startsWith("\r\n", position)) {
      records.push(record);
      record = [];
      position += 2;
      continue;
    }
    if (position < text.length) throw new Error(`expected a comma or CRLF at offset ${position}`);
  }
  if (record.length > 0) throw new Error("the last record does not end with CRLF");
  return records;
}

/** CSV records as objects keyed by the header row. */
export function csvObjects(text: string): { header: string[]; rows: Record<string, string>[] } {
  const [header, ...records] = parseCsv(text);
  if (!header) throw new Error("CSV has no header row");
  for (const record of records) {
    expect(record.length).toBe(header.length);
  }
  return { header, rows: records.map((record) => Object.fromEntries(header.map((column, index) => [column, record[index]!]))) };
}
