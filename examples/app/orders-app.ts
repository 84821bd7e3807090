/**
 * An example service that reads PostgreSQL with credentials from the broker. It never
 * holds a database password of its own: the SDK issues one on first use, renews it while
 * the service runs, and issues a new one when the lease is revoked or the secret rotates.
 * A query whose connection was lost is retried, and one whose login the database rejected
 * is retried with a new credential, so the service keeps serving requests through a
 * revocation or a rotation.
 *
 * Configuration (environment):
 *   BROKER_ADDR      the broker's URL
 *   APP_CLIENT_ID    the service account id (sa_...)
 *   APP_KEY_FILE     the account's private key, as a JWK or PKCS#8 PEM file
 *   APP_DB_SECRET    the PostgreSQL secret to read with (dynamic or static)
 *   APP_DB_HOST, APP_DB_PORT, APP_DB_NAME   where the database is (default 127.0.0.1:5432)
 *   APP_PORT         the port to listen on (default 8081)
 *
 * GET /orders returns the number of rows in table `orders`, the database role that read
 * them, and the lease and version of the credential used.
 */
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import postgres from "postgres";
import { type Credential, createClient, privateKeyJwt } from "secrets-broker/sdk";

const SCOPE = "secrets:read";
/** SQLSTATEs of a rejected login: the role was dropped (revoked) or its password changed (rotated). */
const LOGIN_REJECTED = new Set(["28P01", "28000"]);
/** A session the server ended (revoking a role terminates its sessions) or a connection that broke. */
const CONNECTION_LOST = new Set(["57P01", "CONNECTION_CLOSED", "CONNECTION_ENDED", "ECONNRESET"]);
/** A query is tried at most this many times: a lost connection, then a rejected login, then the new credential. */
const MAX_ATTEMPTS = 3;
const POOL_SIZE = 4;
const POOL_END_TIMEOUT_SECONDS = 5;

const environment = readEnvironment();
const key = await readKey(environment.keyFile);
const client = createClient({ broker: environment.brokerAddr, identity: privateKeyJwt({ clientId: environment.clientId, key }) });

/** The connection pool of the credential in use; replaced when the SDK hands out a new credential. */
let pool: { leaseId: string; version: string | null; sql: postgres.Sql } | undefined;

client.watch(
  environment.dbSecret,
  (credential) => log("credential in use", { lease_id: credential.leaseId, version: credential.version }),
  { scope: SCOPE, onError: (error) => log("credential refresh failed; retrying", { error: String(error) }) },
);

async function currentPool(): Promise<NonNullable<typeof pool>> {
  const credential = await client.getCredential(environment.dbSecret, { scope: SCOPE });
  if (pool?.leaseId !== credential.leaseId) {
    const previous = pool;
    pool = { leaseId: credential.leaseId, version: credential.version, sql: connect(credential) };
    void previous?.sql.end({ timeout: POOL_END_TIMEOUT_SECONDS });
  }
  return pool;
}

function connect(credential: Credential): postgres.Sql {
  return postgres({
    host: environment.dbHost,
    port: environment.dbPort,
    database: environment.dbName,
    username: credential.data["username"]!,
    password: credential.data["password"]!,
    max: POOL_SIZE,
    onnotice: () => undefined,
  });
}

/**
 * Reads the orders. A lost connection is retried on a new connection; a rejected login
 * makes the SDK issue a new credential first.
 */
async function readOrders(): Promise<Record<string, unknown>> {
  for (let attempt = 1; ; attempt++) {
    const current = await currentPool();
    try {
      const [row] = await current.sql`select current_user as role, count(*)::int as orders from orders`;
      return { ...row, lease_id: current.leaseId, version: current.version };
    } catch (error) {
      const code = (error as { code?: string }).code ?? "";
      if (attempt >= MAX_ATTEMPTS || !(LOGIN_REJECTED.has(code) || CONNECTION_LOST.has(code))) throw error;
      if (LOGIN_REJECTED.has(code)) {
        log("database rejected the credential; getting a new one", { lease_id: current.leaseId, sqlstate: code });
        client.invalidate(environment.dbSecret);
      } else {
        log("database connection lost; retrying", { lease_id: current.leaseId, code });
      }
    }
  }
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (request.url === "/healthz") {
    return send(response, 200, { status: "ok" });
  }
  if (request.method !== "GET" || request.url !== "/orders") {
    return send(response, 404, { error: "not found: try GET /orders" });
  }
  try {
    send(response, 200, await readOrders());
  } catch (error) {
    log("request failed", { error: String(error) });
    send(response, 503, { error: "orders are unavailable; see the service log" });
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

const server = createServer((request, response) => void handle(request, response));
server.listen(environment.port, "127.0.0.1", () => log("listening", { port: environment.port }));

/** On SIGTERM or SIGINT: stop taking requests, revoke the leases, close the pool. */
async function shutdown(): Promise<void> {
  server.close();
  const released = await client.close();
  await pool?.sql.end({ timeout: POOL_END_TIMEOUT_SECONDS });
  log("stopped", released);
}
process.once("SIGTERM", () => void shutdown());
process.once("SIGINT", () => void shutdown());

function readEnvironment() {
  const required = (name: string): string => {
    const value = process.env[name];
    if (!value) {
      console.error(`orders-app: ${name} is required; see the comment at the top of orders-app.ts`);
      process.exit(2);
    }
    return value;
  };
  return {
    brokerAddr: required("BROKER_ADDR"),
    clientId: required("APP_CLIENT_ID"),
    keyFile: required("APP_KEY_FILE"),
    dbSecret: required("APP_DB_SECRET"),
    dbHost: process.env["APP_DB_HOST"] ?? "127.0.0.1",
    dbPort: Number(process.env["APP_DB_PORT"] ?? 5432),
    dbName: process.env["APP_DB_NAME"] ?? "orders",
    port: Number(process.env["APP_PORT"] ?? 8081),
  };
}

async function readKey(file: string): Promise<string | Record<string, unknown>> {
  const text = await readFile(file, "utf8");
  return text.trimStart().startsWith("{") ? JSON.parse(text) : text;
}

function log(message: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), message, ...fields }));
}
