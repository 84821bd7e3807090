/**
 * The main job, end to end on real input: a broker on PGlite, the example estate, a
 * workload that obtains an access token with openid-client (discovery and
 * private_key_jwt, unchanged), a relying service that verifies it with jose and with
 * jsonwebtoken + jwks-rsa, a token exchange of a Kubernetes-shaped token from a local
 * issuer, a revocation seen by introspection, and the lineage of what happened.
 *
 * Run it with `npm run demo`. Everything listens on 127.0.0.1 and stops at the end.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT } from "jose";
import jsonwebtoken from "jsonwebtoken";
import jwksRsa from "jwks-rsa";
import * as oidc from "openid-client";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CLI = path.join(ROOT, "dist/broker/cli/main.js");
const ESTATE = path.join(ROOT, "examples/estate.yaml");
const K8S_ISSUER_PORT = 18_443;

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "secrets-broker-demo-"));
  const port = 18_080;
  const issuer = `http://127.0.0.1:${port}`;
  const environment = { ...process.env, BROKER_DATA_DIR: dataDir, PORT: String(port), BROKER_ADDR: issuer, LOG_LEVEL: "warn" };
  const broker = spawn(process.execPath, [CLI, "serve"], { env: environment, stdio: ["ignore", "inherit", "inherit"] });
  let kubernetes: Server | undefined;

  try {
    step("1. Start the broker on PGlite and import examples/estate.yaml");
    await waitForBroker(issuer, broker);
    const adminToken = (await readFile(path.join(dataDir, "admin-token"), "utf8")).trim();
    const cli = (...args: string[]) => run([CLI, ...args], { ...environment, BROKER_TOKEN: adminToken });
    console.log(await cli("import", ESTATE));
    const operator = operatorClient(issuer, adminToken);
    const accounts = (await operator("GET", "/v1/service-accounts?limit=1000")).items as { id: string; name: string }[];
    const ledger = accounts.find((account) => account.name === "payments-ledger")!;
    const ordersApi = accounts.find((account) => account.name === "orders-api")!;

    step("2. Register the workload's public key on payments-ledger");
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const kid = "payments-ledger-demo";
    await operator("POST", `/v1/service-accounts/${ledger.id}/keys`, { jwk: { ...(await exportJWK(publicKey)), kid } });
    console.log(`key ${kid} registered on ${ledger.id}`);

    step("3. The workload obtains a token with openid-client: discovery plus private_key_jwt");
    const configuration = await oidc.discovery(new URL(issuer), ledger.id, undefined, oidc.PrivateKeyJwt({ key: privateKey, kid }), {
      algorithm: "oauth2",
      execute: [oidc.allowInsecureRequests],
    });
    const audience = "https://db.payments.example.com";
    const tokens = await oidc.clientCredentialsGrant(configuration, { scope: "ledger.read", audience });
    console.log({ token_type: tokens.token_type, expires_in: tokens.expires_in, scope: tokens.scope, lease_id: tokens["lease_id"] });

    step("4. A relying service verifies it with jose's remote JWKS");
    const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
    const verified = await jwtVerify(tokens.access_token, jwks, { issuer, audience, typ: "at+jwt" });
    console.log({ sub: verified.payload.sub, aud: verified.payload.aud, scope: verified.payload["scope"], alg: verified.protectedHeader.alg });

    step("5. Another relying service verifies it with jsonwebtoken and jwks-rsa");
    const jwksClient = jwksRsa({ jwksUri: `${issuer}/.well-known/jwks.json` });
    const header = JSON.parse(Buffer.from(tokens.access_token.split(".")[0]!, "base64url").toString("utf8")) as { kid: string };
    const signingKey = await jwksClient.getSigningKey(header.kid);
    const decoded = jsonwebtoken.verify(tokens.access_token, signingKey.getPublicKey(), { algorithms: ["ES256"], audience, issuer });
    console.log({ verified_by: "jsonwebtoken", sub: (decoded as jsonwebtoken.JwtPayload).sub });

    step("6. Token exchange: a Kubernetes-shaped token from a local issuer becomes a broker token");
    const cluster = await startLocalIssuer(K8S_ISSUER_PORT);
    kubernetes = cluster.server;
    await operator("POST", "/v1/trusted-issuers", { issuer: cluster.issuer, jwks_uri: `${cluster.issuer}/keys`, audiences: [issuer] });
    await operator("POST", `/v1/service-accounts/${ordersApi.id}/federated-subjects`, {
      issuer: cluster.issuer,
      subject: "system:serviceaccount:orders:orders-api",
    });
    const projected = await cluster.mint("system:serviceaccount:orders:orders-api", issuer);
    const exchanged = await postForm(`${issuer}/v1/token`, {
      grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
      subject_token: projected,
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      scope: "orders.read",
    });
    console.log({ issued_token_type: exchanged.issued_token_type, expires_in: exchanged.expires_in, lease_id: exchanged.lease_id });

    step("7. Revoke the first lease: introspection turns inactive");
    const introspect = () => postForm(`${issuer}/v1/introspect`, { token: tokens.access_token }, adminToken);
    console.log("before:", { active: (await introspect()).active });
    await operator("POST", `/v1/leases/${String(tokens["lease_id"])}/revoke`, { reason: "demo: workload retired" });
    console.log("after: ", { active: (await introspect()).active });

    step("8. Lineage: which credentials payments-ledger and orders-api held, and how they ended");
    console.log(await cli("lineage", "export", "--format", "csv"));
  } finally {
    broker.kill("SIGTERM");
    kubernetes?.close();
    await new Promise((resolve) => broker.once("exit", resolve));
    await rm(dataDir, { recursive: true, force: true });
  }
}

function step(title: string): void {
  console.log(`\n=== ${title}`);
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { env }, (error, stdout, stderr) => (error ? reject(new Error(stderr || error.message)) : resolve(stdout.trim())));
  });
}

async function waitForBroker(issuer: string, broker: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt += 1) {
    if (broker.exitCode !== null) throw new Error("the broker exited during start-up");
    try {
      if ((await fetch(`${issuer}/readyz`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("the broker did not become ready within 30 seconds");
}

function operatorClient(issuer: string, token: string) {
  return async (method: string, route: string, body?: unknown): Promise<any> => {
    const response = await fetch(`${issuer}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!response.ok) throw new Error(`${method} ${route} failed with ${response.status}: ${await response.text()}`);
    return response.json();
  };
}

async function postForm(url: string, form: Record<string, string>, bearer?: string): Promise<Record<string, unknown>> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: new URLSearchParams(form),
  });
  const body = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new Error(`POST ${url} failed with ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

/** A stand-in for a Kubernetes API server's service-account issuer: a JWKS and projected-token minting. */
async function startLocalIssuer(port: number) {
  const issuer = `http://127.0.0.1:${port}`;
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "cluster-key-1", alg: "ES256", use: "sig" };
  const server = createServer((request, response) => {
    response.setHeader("content-type", "application/json");
    response.end(request.url === "/keys" ? JSON.stringify({ keys: [jwk] }) : "{}");
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const mint = (subject: string, audience: string) =>
    new SignJWT({ "kubernetes.io": { namespace: "orders", serviceaccount: { name: "orders-api" } } })
      .setProtectedHeader({ alg: "ES256", kid: "cluster-key-1", typ: "JWT" })
      .setIssuer(issuer)
      .setSubject(subject)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(privateKey);
  return { issuer, server, mint };
}

await main();
