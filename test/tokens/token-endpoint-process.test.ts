import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type CryptoKey, createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT } from "jose";
import jsonwebtoken from "jsonwebtoken";
import jwksRsa from "jwks-rsa";
import * as oidc from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrokerProcess, CLI_PATH, freePort, startBrokerProcess } from "../support/broker-process.js";
import { createScratchDatabase, type ScratchDatabase } from "../support/test-database.js";
import { JWT_BEARER } from "./oauth-fixtures.js";

const AUDIENCE = "https://db.orders.example.com";

/** Builds a client of one broker process for operator requests with the admin token and for form posts. */
function brokerClient(address: string, adminToken: string) {
  return {
    async operator(method: string, route: string, body?: unknown): Promise<any> {
      const response = await fetch(`${address}${route}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await response.text();
      if (!response.ok) {
        throw new Error(`${method} ${route} failed with ${response.status}: ${text}`);
      }
      return text ? JSON.parse(text) : undefined;
    },
    async form(route: string, params: Record<string, string>, bearer?: string): Promise<{ status: number; json: any; text: string }> {
      const response = await fetch(`${address}${route}`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
        body: new URLSearchParams(params),
      });
      const text = await response.text();
      return { status: response.status, text, json: text ? JSON.parse(text) : undefined };
    },
  };
}

/** A service account registered over HTTP, with the private half of its registered key. */
interface RegisteredClient {
  accountId: string;
  kid: string;
  privateKey: CryptoKey;
}

async function registerClient(client: ReturnType<typeof brokerClient>): Promise<RegisteredClient> {
  const application = await client.operator("POST", "/v1/applications", { name: `orders-${randomUUID()}`, technical_owner: "team-orders@example.com" });
  const account = await client.operator("POST", "/v1/service-accounts", {
    name: `orders-api-${randomUUID()}`,
    application_id: application.id,
    technical_owner: "alice@example.com",
    expires_at: new Date(Date.now() + 365 * 24 * 3600 * 1000).toISOString(),
    allowed_audiences: [AUDIENCE],
    allowed_scopes: ["orders.read"],
  });
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const kid = `orders-api-${randomUUID()}`;
  await client.operator("POST", `/v1/service-accounts/${account.id}/keys`, { jwk: { ...(await exportJWK(publicKey)), kid } });
  return { accountId: account.id, kid, privateKey };
}

/** Signs a client assertion on the real clock, as a workload would. */
function clientAssertion(registered: RegisteredClient, audience: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: "ES256", kid: registered.kid, typ: "JWT" })
    .setIssuer(registered.accountId)
    .setSubject(registered.accountId)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime("60s")
    .setJti(randomUUID())
    .sign(registered.privateKey);
}

describe("token endpoint against a broker process", () => {
  let broker: BrokerProcess;
  let client: ReturnType<typeof brokerClient>;
  let workload: RegisteredClient;
  /** Every token and assertion seen by the test; none may appear in the process output. */
  const secrets: string[] = [];
  let accessToken: string;

  beforeAll(async () => {
    broker = await startBrokerProcess();
    const adminToken = (await readFile(path.join(broker.dataDir, "admin-token"), "utf8")).trim();
    client = brokerClient(broker.address, adminToken);
    workload = await registerClient(client);
  });

  afterAll(async () => {
    await broker?.cleanup();
  });

  it("first token request after start answers", async () => {
    const assertion = await clientAssertion(workload, broker.address);
    secrets.push(assertion);

    const response = await client.form("/v1/token", { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: assertion });

    expect(response.status, response.text).toBe(200);
    secrets.push(response.json.access_token);
  });

  it("openid-client obtains token with private_key_jwt", async () => {
    const configuration = await oidc.discovery(
      new URL(broker.address),
      workload.accountId,
      undefined,
      oidc.PrivateKeyJwt({ key: workload.privateKey, kid: workload.kid }),
      { algorithm: "oauth2", execute: [oidc.allowInsecureRequests] },
    );

    const tokens = await oidc.clientCredentialsGrant(configuration, { scope: "orders.read", audience: AUDIENCE });

    accessToken = tokens.access_token;
    secrets.push(accessToken);
    expect(tokens.token_type).toBe("bearer");
    expect(tokens.scope).toBe("orders.read");
    expect(tokens.expires_in).toBe(900);
    expect(tokens["lease_id"]).toMatch(/^lease_[0-9a-f]{24}$/);
  });

  it("jose remote JWKS verifies token", async () => {
    const jwks = createRemoteJWKSet(new URL(`${broker.address}/.well-known/jwks.json`));

    const { payload, protectedHeader } = await jwtVerify(accessToken, jwks, { issuer: broker.address, audience: AUDIENCE, typ: "at+jwt", algorithms: ["ES256"] });

    expect(payload.sub).toBe(workload.accountId);
    expect(payload["client_id"]).toBe(workload.accountId);
    expect(protectedHeader.kid).toEqual(expect.any(String));
  });

  it("jsonwebtoken with jwks-rsa verifies token", async () => {
    const jwksClient = jwksRsa({ jwksUri: `${broker.address}/.well-known/jwks.json` });
    const { kid } = jsonwebtoken.decode(accessToken, { complete: true })!.header;
    const key = await jwksClient.getSigningKey(kid);

    const payload = jsonwebtoken.verify(accessToken, key.getPublicKey(), { algorithms: ["ES256"], audience: AUDIENCE, issuer: broker.address });

    expect((payload as jsonwebtoken.JwtPayload).sub).toBe(workload.accountId);
  });

  it("openid-client introspects and revokes", async () => {
    const configuration = await oidc.discovery(
      new URL(broker.address),
      workload.accountId,
      undefined,
      oidc.PrivateKeyJwt({ key: workload.privateKey, kid: workload.kid }),
      { algorithm: "oauth2", execute: [oidc.allowInsecureRequests] },
    );
    const { access_token: token } = await oidc.clientCredentialsGrant(configuration, { scope: "orders.read" });
    secrets.push(token);

    const before = await oidc.tokenIntrospection(configuration, token);
    await oidc.tokenRevocation(configuration, token);
    const after = await oidc.tokenIntrospection(configuration, token);

    expect(before.active).toBe(true);
    expect(before.sub).toBe(workload.accountId);
    expect(after.active).toBe(false);
  });

  it("replayed assertion refused", async () => {
    const assertion = await clientAssertion(workload, broker.address);
    secrets.push(assertion);
    const form = { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: assertion };

    const first = await client.form("/v1/token", form);
    const second = await client.form("/v1/token", form);

    expect(first.status, first.text).toBe(200);
    secrets.push(first.json.access_token);
    expect(second.status).toBe(401);
    expect(second.json.error).toBe("invalid_client");
    expect(second.text).not.toContain(assertion);
  });

  it("process output has no token", async () => {
    await broker.stop();

    const output = broker.output();

    expect(output).toContain("request answered");
    expect(secrets.length).toBeGreaterThanOrEqual(6);
    expect(secrets.filter((secret) => output.includes(secret) || output.includes(secret.split(".")[2]!))).toEqual([]);
  });
});

/** A `secrets-broker serve` process started by this file. */
interface ServeProcess {
  address: string;
  dataDir: string;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `secrets-broker serve` on a free loopback port with the given database, master key
 * and issuer, so that several processes act as replicas of one broker.
 */
async function startReplica(databaseUrl: string, masterKey: string, issuer: string | undefined, port: number): Promise<ServeProcess> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "sb-replica-"));
  const address = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(process.execPath, [CLI_PATH, "serve"], {
    env: {
      PATH: process.env["PATH"],
      HOME: process.env["HOME"],
      HOST: "127.0.0.1",
      PORT: String(port),
      BROKER_DATA_DIR: dataDir,
      DATABASE_URL: databaseUrl,
      BROKER_MASTER_KEY: masterKey,
      BROKER_ISSUER: issuer ?? address,
      LOG_LEVEL: "debug",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += String(chunk)));
  child.stderr!.on("data", (chunk) => (output += String(chunk)));

  const stop = async () => {
    if (child.exitCode === null) {
      await new Promise((resolve) => {
        child.once("exit", resolve);
        child.kill("SIGTERM");
      });
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  while (!(await fetch(`${address}/readyz`).then((response) => response.ok, () => false))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`broker replica on ${address} did not become ready:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { address, dataDir, output: () => output, stop };
}

const withoutPostgres = !process.env["DATABASE_URL"];

describe("two broker processes on one PostgreSQL database", () => {
  let database: ScratchDatabase | undefined;
  let first: ServeProcess | undefined;
  let second: ServeProcess | undefined;
  let issuer: string;
  let registered: RegisteredClient;

  beforeAll(async () => {
    if (withoutPostgres) {
      return;
    }
    database = await createScratchDatabase("sbreplica");
    const masterKey = randomBytes(32).toString("base64");
    const firstPort = await freePort();
    issuer = `http://127.0.0.1:${firstPort}`;
    first = await startReplica(database!.url, masterKey, issuer, firstPort);
    second = await startReplica(database!.url, masterKey, issuer, await freePort());
    const adminToken = (await readFile(path.join(first.dataDir, "admin-token"), "utf8")).trim();
    registered = await registerClient(brokerClient(first.address, adminToken));
  });

  afterAll(async () => {
    await first?.stop();
    await second?.stop();
    await database?.drop();
  });

  function tokenRequest(replica: ServeProcess, assertion: string) {
    return brokerClient(replica.address, "").form("/v1/token", {
      grant_type: "client_credentials",
      client_assertion_type: JWT_BEARER,
      client_assertion: assertion,
    });
  }

  it.skipIf(withoutPostgres)("assertion replayed on the other replica refused", async () => {
    const assertion = await clientAssertion(registered, issuer);

    const accepted = await tokenRequest(first!, assertion);
    const replayed = await tokenRequest(second!, assertion);

    expect(accepted.status, accepted.text).toBe(200);
    expect(replayed.status).toBe(401);
    expect(replayed.json.error).toBe("invalid_client");
    expect(replayed.json.error_description).toMatch(/jti was already used/);
  });

  it.skipIf(withoutPostgres)("replay refused in either direction", async () => {
    const assertion = await clientAssertion(registered, issuer);

    const accepted = await tokenRequest(second!, assertion);
    const replayed = await tokenRequest(first!, assertion);

    expect(accepted.status, accepted.text).toBe(200);
    expect(replayed.status).toBe(401);
  });

  it.skipIf(withoutPostgres)("concurrent replays accepted once", async () => {
    const assertion = await clientAssertion(registered, issuer);

    const answers = await Promise.all([first!, second!, first!, second!].map((replica) => tokenRequest(replica, assertion)));

    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 401, 401, 401]);
  });

  it.skipIf(withoutPostgres)("token from one replica introspected by the other", async () => {
    const adminToken = (await readFile(path.join(first!.dataDir, "admin-token"), "utf8")).trim();
    const issued = await tokenRequest(first!, await clientAssertion(registered, issuer));

    const introspected = await brokerClient(second!.address, adminToken).form("/v1/introspect", { token: issued.json.access_token }, adminToken);

    expect(introspected.json.active).toBe(true);
    expect(introspected.json.sub).toBe(registered.accountId);
  });
});
