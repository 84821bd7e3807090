import { randomUUID } from "node:crypto";
import { decodeJwt, type CryptoKey, importJWK, type JWTPayload, type KeyObject, SignJWT } from "jose";
import { expect } from "vitest";
import type { AuditEventView } from "../../broker/audit/audit-query.js";
import { addWorkloadKey, auditEventsAfter, createServiceAccount, generateJwkPair, lastAuditSeq, type KeyType, uniqueName } from "../support/register-fixtures.js";
import type { TestBroker, TestResponse } from "../support/test-broker.js";

export const FORM_CONTENT_TYPE = "application/x-www-form-urlencoded";
export const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
export const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

/** Seconds since the epoch on the broker's clock. */
export function epochSeconds(broker: TestBroker, offsetSeconds = 0): number {
  return Math.floor(broker.clock.now().getTime() / 1000) + offsetSeconds;
}

export type SigningKey = CryptoKey | KeyObject | Uint8Array;

/** A service account with one registered key pair, able to sign client assertions. */
export interface Workload {
  accountId: string;
  applicationId: string;
  kid: string;
  alg: string;
  privateKey: SigningKey;
  publicJwk: Record<string, unknown>;
}

const ALGORITHM_BY_KEY_TYPE: Record<KeyType, string> = { "ec-p256": "ES256", ed25519: "EdDSA", "rsa-2048": "RS256" };

/**
 * Registers a service account (fields as for POST /v1/service-accounts) with a fresh key pair.
 * The workload signs with `alg`, by default the first algorithm of the key type.
 */
export async function createWorkload(
  broker: TestBroker,
  fields: Record<string, unknown> = {},
  keyType: KeyType = "ec-p256",
  alg?: string,
): Promise<Workload> {
  const account = await createServiceAccount(broker, fields);
  const key = await addKeyPair(broker, account.id, keyType, alg);
  return { accountId: account.id, applicationId: account.application_id, ...key };
}

/** Registers another key pair on an account and returns its kid, signing algorithm and both halves. */
export async function addKeyPair(
  broker: TestBroker,
  accountId: string,
  keyType: KeyType = "ec-p256",
  alg = ALGORITHM_BY_KEY_TYPE[keyType],
): Promise<{ kid: string; alg: string; privateKey: SigningKey; publicJwk: Record<string, unknown> }> {
  const pair = generateJwkPair(keyType);
  const kid = uniqueName("key");
  await addWorkloadKey(broker, accountId, { ...pair.publicJwk, kid });
  return { kid, alg, privateKey: await importJWK(pair.privateJwk, alg), publicJwk: pair.publicJwk };
}

/** Changes to a client assertion: header members to set, claims to set, claims to leave out. */
export interface AssertionChanges {
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  omit?: string[];
  key?: SigningKey;
}

/**
 * Signs an RFC 7523 client assertion for the workload: `iss` = `sub` = its account id,
 * `aud` the broker's issuer, issued now on the broker's clock, valid for 60 seconds.
 */
export async function signAssertion(broker: TestBroker, workload: Workload, changes: AssertionChanges = {}): Promise<string> {
  const now = epochSeconds(broker);
  const claims: JWTPayload = {
    iss: workload.accountId,
    sub: workload.accountId,
    aud: broker.deps.config.issuer,
    iat: now,
    exp: now + 60,
    jti: randomUUID(),
    ...changes.claims,
  };
  for (const name of changes.omit ?? []) {
    delete claims[name];
  }
  const header = { alg: workload.alg, kid: workload.kid, typ: "JWT", ...changes.header };
  for (const [name, value] of Object.entries(header)) {
    if (value === undefined) {
      delete header[name as keyof typeof header];
    }
  }
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(changes.key ?? workload.privateKey);
}

/** Builds an unsigned compact JWS with the given header and payload and an empty or given signature. */
export function unsignedJwt(header: Record<string, unknown>, payload: Record<string, unknown>, signature = ""): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${encode(header)}.${encode(payload)}.${signature}`;
}

/** Sends a form-encoded POST, with no Authorization header unless `token` is given. */
export function postForm(
  broker: TestBroker,
  path: string,
  params: Record<string, string> | [string, string][],
  options: { token?: string | null; contentType?: string } = {},
): Promise<TestResponse> {
  return broker.request("POST", path, {
    token: options.token ?? null,
    rawBody: new URLSearchParams(params).toString(),
    headers: { "content-type": options.contentType ?? FORM_CONTENT_TYPE },
  });
}

/** Asks the token endpoint for a client_credentials token with a fresh assertion; `extra` adds form parameters. */
export async function requestToken(broker: TestBroker, workload: Workload, extra: Record<string, string> = {}): Promise<TestResponse> {
  return postForm(broker, "/v1/token", {
    grant_type: "client_credentials",
    client_assertion_type: JWT_BEARER,
    client_assertion: await signAssertion(broker, workload),
    ...extra,
  });
}

/** The RFC 6749 section 5.1 token response, plus the broker's lease id. */
export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
  lease_id: string;
  issued_token_type?: string;
}

/** Obtains an access token and fails the test when the broker does not issue one. */
export async function issueToken(broker: TestBroker, workload: Workload, extra: Record<string, string> = {}): Promise<TokenResponse> {
  const response = await requestToken(broker, workload, extra);
  expect(response.status, response.text).toBe(200);
  return response.json as TokenResponse;
}

/** Reads the `jti` of a JWT without verifying it. */
export function jtiOf(token: string): string {
  return String(decodeJwt(token).jti);
}

/** Introspects a token as the harness auditor and returns the RFC 7662 response. */
export async function introspectAsAuditor(broker: TestBroker, token: string): Promise<Record<string, unknown>> {
  const response = await postForm(broker, "/v1/introspect", { token }, { token: broker.tokens.auditor });
  expect(response.status, response.text).toBe(200);
  return response.json as Record<string, unknown>;
}

/** Runs a request and returns its response with the audit events written meanwhile. */
export async function withAuditEvents<T = TestResponse>(broker: TestBroker, send: () => Promise<T>): Promise<{ response: T; events: AuditEventView[] }> {
  const seq = await lastAuditSeq(broker);
  const response = await send();
  return { response, events: await auditEventsAfter(broker, seq) };
}

/**
 * Checks an OAuth error response and the one denied audit event it wrote: the error code,
 * the status (401 for invalid_client, 400 otherwise), a description matching `check`,
 * and neither the description nor the audit event containing any of `secrets`.
 */
export function expectOAuthRefusal(
  { response, events }: { response: TestResponse; events: AuditEventView[] },
  expected: { error: string; check: RegExp; reason?: string; action?: string; secrets?: string[] },
): void {
  expect(response.status, response.text).toBe(expected.error === "invalid_client" ? 401 : 400);
  expect(response.headers.get("cache-control")).toBe("no-store");
  expect(response.json.error).toBe(expected.error);
  expect(response.json.error_description).toMatch(expected.check);

  const denied = events.filter((event) => event.action === (expected.action ?? "token.issue"));
  expect(denied).toHaveLength(1);
  expect(denied[0]!.outcome).toBe("denied");
  expect(denied[0]!.details["error"]).toBe(expected.error);
  if (expected.reason) {
    expect(denied[0]!.details["reason"]).toBe(expected.reason);
  }
  for (const secret of expected.secrets ?? []) {
    expect(response.text).not.toContain(secret);
    expect(JSON.stringify(events)).not.toContain(secret);
  }
}

/** Returns the signature part of a compact JWS, which is enough to recognize a token that leaked in part. */
export function signatureOf(token: string): string {
  return token.split(".")[2] ?? "";
}
