import { generateKeyPairSync } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { expect } from "vitest";
import type { Clock } from "../../sdk/index.js";
import { type BrokerProcess, startBrokerProcess } from "../support/broker-process.js";
import { FUTURE_EXPIRY, uniqueName } from "../support/register-fixtures.js";

export const READ_SCOPE = "secrets:read";

/** A broker process with its first admin token, and a JSON client for the operator API. */
export interface SdkBroker {
  process: BrokerProcess;
  address: string;
  admin(method: "GET" | "POST" | "PATCH", route: string, body?: unknown): Promise<{ status: number; body: any }>;
}

export async function startSdkBroker(environment: NodeJS.ProcessEnv = {}): Promise<SdkBroker> {
  const process = await startBrokerProcess(environment);
  const adminToken = (await readFile(path.join(process.dataDir, "admin-token"), "utf8")).trim();
  return {
    process,
    address: process.address,
    async admin(method, route, body) {
      const response = await fetch(`${process.address}${route}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text === "" ? null : JSON.parse(text) };
    },
  };
}

/** Calls the operator API and fails the test unless the status is `status`. */
export async function expectAdmin(broker: SdkBroker, status: number, method: "GET" | "POST" | "PATCH", route: string, body?: unknown): Promise<any> {
  const response = await broker.admin(method, route, body);
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  return response.body;
}

/** A service account with a registered P-256 key, and the private JWK the SDK signs with. */
export interface SdkWorkload {
  accountId: string;
  kid: string;
  privateJwk: Record<string, unknown>;
}

export async function registerWorkload(broker: SdkBroker, fields: Record<string, unknown> = {}): Promise<SdkWorkload> {
  const application = await expectAdmin(broker, 201, "POST", "/v1/applications", { name: uniqueName("sdk-app"), technical_owner: "team-orders@example.com" });
  const account = await expectAdmin(broker, 201, "POST", "/v1/service-accounts", {
    name: uniqueName("sdk-account"),
    application_id: application.id,
    technical_owner: "dana@example.com",
    expires_at: FUTURE_EXPIRY,
    allowed_scopes: [READ_SCOPE, "db:orders"],
    ...fields,
  });
  const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const publicJwk = pair.publicKey.export({ format: "jwk" });
  const key = await expectAdmin(broker, 201, "POST", `/v1/service-accounts/${account.id}/keys`, { jwk: publicJwk });
  return { accountId: account.id, kid: key.kid, privateJwk: { ...pair.privateKey.export({ format: "jwk" }), kid: key.kid } };
}

/** Creates a generated local secret and a grant of it to the account; returns the secret's id and name. */
export async function grantedSecret(broker: SdkBroker, accountId: string, fields: Record<string, unknown> = {}): Promise<{ id: string; name: string }> {
  const secret = await expectAdmin(broker, 201, "POST", "/v1/secrets", {
    name: `sdk/${uniqueName("secret")}`,
    adapter: "local",
    kind: "static",
    owner: "team-payments",
    generate: { length: 32 },
    default_ttl: 60,
    ...fields,
  });
  await expectAdmin(broker, 201, "POST", "/v1/grants", {
    service_account_id: accountId,
    secret: secret.name,
    scopes: [READ_SCOPE],
    approved_by: "alice@example.com",
    justification: "CHG-1234",
  });
  return { id: secret.id, name: secret.name };
}

/** Reads a lease as the admin. */
export function readLease(broker: SdkBroker, leaseId: string): Promise<any> {
  return expectAdmin(broker, 200, "GET", `/v1/leases/${leaseId}`);
}

/** Lists the active leases of an account. */
export async function activeLeases(broker: SdkBroker, accountId: string): Promise<any[]> {
  const page = await expectAdmin(broker, 200, "GET", `/v1/leases?service_account_id=${accountId}&status=active&limit=100`);
  return page.items;
}

/**
 * A clock the test moves by hand. `advance` runs every scheduled callback that falls
 * due, in order. Retry sleeps resolve at once and are recorded, so that a test can check the
 * delays the SDK chose without waiting for them.
 */
export class ManualClock implements Clock {
  private current = Date.now();
  private timers: { dueAt: number; callback: () => void; id: number }[] = [];
  private nextId = 0;
  readonly sleeps: number[] = [];

  now(): number {
    return this.current;
  }

  schedule(callback: () => void, delayMs: number): () => void {
    const id = this.nextId++;
    this.timers.push({ dueAt: this.current + Math.max(0, delayMs), callback, id });
    return () => {
      this.timers = this.timers.filter((timer) => timer.id !== id);
    };
  }

  sleep(delayMs: number): Promise<void> {
    this.sleeps.push(delayMs);
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** Timers still scheduled. */
  pending(): number {
    return this.timers.length;
  }

  advance(ms: number): void {
    this.current += ms;
    for (;;) {
      const due = this.timers.filter((timer) => timer.dueAt <= this.current).sort((a, b) => a.dueAt - b.dueAt)[0];
      if (due === undefined) return;
      this.timers = this.timers.filter((timer) => timer.id !== due.id);
      due.callback();
    }
  }
}

/** A recorded request: method and path, and the form or JSON body as text. */
export interface SeenRequest {
  method: string;
  path: string;
  body: string;
}

/**
 * Wraps the global fetch, recording each request. `intercept` may respond to a request
 * itself (to simulate an outage or an error) by returning a Response or throwing.
 */
export function recordingFetch(intercept?: (request: SeenRequest) => Response | undefined): { fetch: typeof fetch; seen: SeenRequest[]; count(method: string, pathPattern: RegExp): number } {
  const seen: SeenRequest[] = [];
  const wrapped: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const request = { method: init?.method ?? "GET", path: url.pathname, body: typeof init?.body === "string" ? init.body : "" };
    seen.push(request);
    const answer = intercept?.(request);
    return answer ?? fetch(input, init);
  };
  return { fetch: wrapped, seen, count: (method, pattern) => seen.filter((request) => request.method === method && pattern.test(request.path)).length };
}

/** Builds a 503 problem response, as the broker sends when an upstream is down. */
export function unavailable(retryAfter?: string): Response {
  return new Response(JSON.stringify({ type: "urn:secrets-broker:problem:upstream-unavailable", status: 503, code: "upstream_unavailable", detail: "upstream down" }), {
    status: 503,
    headers: { "content-type": "application/problem+json", ...(retryAfter === undefined ? {} : { "retry-after": retryAfter }) },
  });
}

/** Fails a request as a refused connection does. */
export function connectionRefused(): never {
  throw new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) });
}
