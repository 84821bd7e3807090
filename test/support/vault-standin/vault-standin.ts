import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { DatabaseEngine } from "./database-engine.js";
import { KvEngine } from "./kv-engine.js";
import { LeaseTable } from "./lease-table.js";
import {
  type HandlerResult,
  noHandler,
  permissionDenied,
  type RecordedCall,
  type StandinClock,
  type StandinRequest,
  VaultReply,
} from "./standin-types.js";
import { type StandinToken, TokenStore } from "./token-store.js";

/**
 * A stand-in for a Vault server, written from Vault's HTTP API documentation
 * (https://developer.hashicorp.com/vault/api-docs), for tests that drive the real
 * node-vault client. It listens on 127.0.0.1 on an ephemeral port and serves one KV v2
 * mount, one database mount, sys/leases, token self-management and AppRole login, in
 * the namespace of the X-Vault-Namespace header. Switches: `sealed` (503 on every
 * path), `delayMs` (slow replies), `loseReply` (no reply after acting),
 * `leases.failRevocation`, `tokens.refuseRenewal`, `deny(prefix)` (403 on a path
 * prefix) and `tokens.expire(id)`.
 */
export interface VaultStandinOptions {
  clock?: StandinClock;
  kvMount?: string;
  databaseMount?: string;
  /** Namespaces besides the root namespace "" that requests may name. */
  namespaces?: string[];
}

/** Paths any live token may use, as Vault's default policy allows. */
const SELF_SERVICE_PATHS = new Set(["auth/token/lookup-self", "auth/token/renew-self", "auth/token/revoke-self", "sys/leases/renew", "sys/leases/lookup"]);
const REVOKE_PREFIX = "sys/leases/revoke-prefix/";

export class VaultStandin {
  readonly clock: StandinClock;
  readonly tokens: TokenStore;
  readonly leases: LeaseTable;
  readonly kv: KvEngine;
  readonly database: DatabaseEngine;
  readonly calls: RecordedCall[] = [];
  sealed = false;
  delayMs = 0;
  /** Runs after each request that succeeded, so that a test can change state between two of the client's requests. */
  afterCall: ((call: RecordedCall) => void) | undefined;
  /** Decides after each request that succeeded whether its reply is lost: the connection closes unanswered, after Vault acted. */
  loseReply: ((call: RecordedCall) => boolean) | undefined;
  private readonly deniedPrefixes = new Set<string>();
  private readonly namespaces: Set<string>;
  private server: Server | undefined;
  private port = 0;

  constructor(options: VaultStandinOptions = {}) {
    this.clock = options.clock ?? { now: () => new Date() };
    this.tokens = new TokenStore(this.clock);
    this.leases = new LeaseTable(this.clock);
    this.kv = new KvEngine(options.kvMount ?? "secret", this.clock);
    this.database = new DatabaseEngine(options.databaseMount ?? "database", this.clock, this.leases);
    this.namespaces = new Set(["", ...(options.namespaces ?? [])]);
  }

  get address(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((request, response) => void this.serve(request, response));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Makes every path starting with `prefix` return 403 permission denied, until `allow` is called. */
  deny(prefix: string): void {
    this.deniedPrefixes.add(prefix);
  }

  allow(prefix: string): void {
    this.deniedPrefixes.delete(prefix);
  }

  /** Calls whose path starts with `prefix`. */
  callsTo(prefix: string): RecordedCall[] {
    return this.calls.filter((call) => call.path.startsWith(prefix));
  }

  private async serve(incoming: IncomingMessage, response: ServerResponse): Promise<void> {
    let result: HandlerResult;
    try {
      const request = await parseRequest(incoming);
      const recorded: RecordedCall = { method: request.method, path: request.path, namespace: request.namespace, body: withoutSecrets(request.body) };
      this.calls.push(recorded);
      if (this.delayMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      }
      result = this.route(request, headerOf(incoming, "x-vault-token"));
      this.afterCall?.(recorded);
      if (this.loseReply?.(recorded)) {
        response.socket?.destroy();
        return;
      }
    } catch (error) {
      result = replyOf(error);
    }
    send(response, result);
  }

  private route(request: StandinRequest, tokenId: string | undefined): HandlerResult {
    if (this.sealed) {
      throw new VaultReply(503, ["Vault is sealed"]);
    }
    if (!this.namespaces.has(request.namespace)) {
      throw permissionDenied();
    }
    if (this.tokens.isApproleLogin(request.path) && request.method !== "GET") {
      return this.tokens.login(request);
    }
    const token = this.tokens.authenticate(tokenId, request.namespace);
    if (!SELF_SERVICE_PATHS.has(request.path) && [...this.deniedPrefixes].some((prefix) => request.path.startsWith(prefix))) {
      throw permissionDenied();
    }
    return this.routeAuthenticated(request, token);
  }

  private routeAuthenticated(request: StandinRequest, token: StandinToken): HandlerResult {
    const { path } = request;
    if (path === "auth/token/lookup-self") return this.tokens.lookupSelf(token);
    if (path === "auth/token/renew-self") return this.tokens.renewSelf(token, request);
    if (path === "auth/token/revoke-self") return this.tokens.revokeSelf(token);
    if (path === "sys/leases/lookup") return this.leases.lookup(request);
    if (path === "sys/leases/renew") return this.leases.renew(request);
    if (path === "sys/leases/revoke") return this.leases.revoke(request);
    if (path.startsWith(REVOKE_PREFIX) && (request.method === "POST" || request.method === "PUT")) {
      // https://developer.hashicorp.com/vault/api-docs/system/leases#revoke-prefix: POST (PUT works too), needs sudo.
      if (!token.policies.includes("root") && !token.policies.includes("sudo")) throw permissionDenied();
      return this.leases.revokePrefix(path.slice(REVOKE_PREFIX.length), request);
    }
    const [mount = "", ...rest] = path.split("/");
    if (mount === this.kv.mount) return this.kv.handle(request, rest.join("/"));
    if (mount === this.database.mount) return this.database.handle(request, rest.join("/"));
    // Includes the legacy sys/revoke-prefix/, which OpenBao 2.5.4 removed.
    throw noHandler(path);
  }
}

async function parseRequest(incoming: IncomingMessage): Promise<StandinRequest> {
  const url = new URL(incoming.url ?? "/", "http://127.0.0.1");
  if (!url.pathname.startsWith("/v1/")) {
    throw new VaultReply(404, ["404 page not found"]);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of incoming) {
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  let body: Record<string, unknown> = {};
  if (text !== "") {
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new VaultReply(400, ["failed to parse JSON input"]);
    }
  }
  const listed = url.searchParams.get("list") === "1" || url.searchParams.get("list") === "true";
  const method = listed && incoming.method === "GET" ? "LIST" : (incoming.method as StandinRequest["method"]);
  const path = decodeURIComponent(url.pathname.slice("/v1/".length));
  return { method, path, query: url.searchParams, body, namespace: (headerOf(incoming, "x-vault-namespace") ?? "").replace(/\/$/, "") };
}

function headerOf(incoming: IncomingMessage, name: string): string | undefined {
  const value = incoming.headers[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** Drops request fields that carry credentials, so that tests can print recorded calls. */
function withoutSecrets(body: Record<string, unknown>): Record<string, unknown> {
  const { secret_id: _secretId, data: _data, ...rest } = body;
  return rest;
}

function replyOf(error: unknown): HandlerResult {
  if (error instanceof VaultReply) {
    return { status: error.status, body: error.body ?? { errors: error.errors } };
  }
  return { status: 500, body: { errors: [error instanceof Error ? error.message : "internal error"] } };
}

function send(response: ServerResponse, result: HandlerResult): void {
  if (result === undefined || (result.body === undefined && (result.status ?? 204) === 204)) {
    response.writeHead(204).end();
    return;
  }
  if (result.body === undefined) {
    response.writeHead(result.status ?? 204).end();
    return;
  }
  const text = JSON.stringify(result.body);
  response.writeHead(result.status ?? 200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}
