import { readFile } from "node:fs/promises";
import path from "node:path";
import { type ClientOptions, createClient, privateKeyJwt, type SecretsBrokerClient } from "../../sdk/index.js";
import { type BrokerProcess, startBrokerProcess } from "../support/broker-process.js";
import { type AdminCall, adminCaller, grantedSecret as grantWith, READ_SCOPE, registerWorkload as registerWith, type SdkWorkload } from "../support/sdk-setup.js";

export { ManualClock } from "../support/manual-clock.js";
export { READ_SCOPE, type SdkWorkload };

/** A broker process with its first admin token, and a JSON client for the operator API. */
export interface SdkBroker {
  process: BrokerProcess;
  address: string;
  /** The first admin token, for the CLI's BROKER_TOKEN. */
  adminToken: string;
  admin: AdminCall;
}

export async function startSdkBroker(environment: NodeJS.ProcessEnv = {}): Promise<SdkBroker> {
  const process = await startBrokerProcess(environment);
  const adminToken = (await readFile(path.join(process.dataDir, "admin-token"), "utf8")).trim();
  return { process, address: process.address, adminToken, admin: adminCaller(process.address, adminToken) };
}

/** Calls the operator API and fails the test unless the status is `status`. */
export function expectAdmin(broker: SdkBroker, status: number, method: "GET" | "POST" | "PATCH", route: string, body?: unknown): Promise<any> {
  return broker.admin(status, method, route, body);
}

export function registerWorkload(broker: SdkBroker, fields: Record<string, unknown> = {}): Promise<SdkWorkload> {
  return registerWith(broker.admin, fields);
}

export function grantedSecret(broker: SdkBroker, accountId: string, fields: Record<string, unknown> = {}): Promise<{ id: string; name: string }> {
  return grantWith(broker.admin, accountId, fields);
}

/**
 * Creates SDK clients of one workload, signing with its key, and closes them all at the
 * end of a test file. `target` is read at each call, because the broker and the workload
 * are set up in beforeAll.
 */
export class SdkClients {
  private readonly clients: SecretsBrokerClient[] = [];

  constructor(
    private readonly target: () => { broker: SdkBroker; workload: SdkWorkload },
    private readonly defaults: Partial<ClientOptions> = {},
  ) {}

  create(options: Partial<ClientOptions> = {}): SecretsBrokerClient {
    const { broker, workload } = this.target();
    const client = createClient({ broker: broker.address, identity: privateKeyJwt({ clientId: workload.accountId, key: workload.privateJwk as never }), ...this.defaults, ...options });
    this.clients.push(client);
    return client;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((client) => client.close()));
  }
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
