import { randomBytes } from "node:crypto";
import type { RoleServer } from "./role-server.js";

/** Owner recorded on the benchmark's secrets. */
const BENCH_OWNER = "team-bench@example.com";
/** Length of the generated value of the local secret, in characters. */
const LOCAL_VALUE_LENGTH = 32;

/** Sends one operator request with the admin token and returns the parsed 201 response. Throws on any other status. */
async function postAsOperator(address: string, adminToken: string, route: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${address}${route}`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status !== 201) {
    throw new Error(`POST ${route} failed with ${response.status}: ${text.slice(0, 500)}`);
  }
  return JSON.parse(text) as Record<string, unknown>;
}

/**
 * Adds a local static secret with a generated value and grants it to the service account,
 * through the HTTP API as an operator would. Returns the secret's name.
 */
export async function createLocalSecret(address: string, adminToken: string, serviceAccountId: string): Promise<string> {
  const name = `bench/api-key-${randomBytes(4).toString("hex")}`;
  await postAsOperator(address, adminToken, "/v1/secrets", {
    name,
    adapter: "local",
    kind: "static",
    owner: BENCH_OWNER,
    generate: { length: LOCAL_VALUE_LENGTH },
  });
  await postAsOperator(address, adminToken, "/v1/grants", { service_account_id: serviceAccountId, secret: name });
  return name;
}

/**
 * Adds a dynamic PostgreSQL secret for the role server's group role and grants it to the
 * service account. The admin password goes into a local secret first, which the
 * dynamic secret's settings name, as the README describes. Returns the dynamic secret's name.
 */
export async function createDynamicSecret(address: string, adminToken: string, serviceAccountId: string, roles: RoleServer): Promise<string> {
  const suffix = randomBytes(4).toString("hex");
  const passwordSecret = `bench/pg-admin-${suffix}`;
  await postAsOperator(address, adminToken, "/v1/secrets", {
    name: passwordSecret,
    adapter: "local",
    kind: "static",
    owner: BENCH_OWNER,
    value: { password: roles.admin.password },
  });

  const name = `bench/pg-roles-${suffix}`;
  await postAsOperator(address, adminToken, "/v1/secrets", {
    name,
    adapter: "postgres",
    kind: "dynamic",
    owner: BENCH_OWNER,
    settings: {
      connection: {
        host: roles.host,
        port: roles.port,
        database: roles.database,
        username: roles.admin.username,
        password_secret: passwordSecret,
        ssl: "disable",
      },
      role: { member_of: [roles.groupRole], name_prefix: roles.brokerNamePrefix },
    },
  });
  await postAsOperator(address, adminToken, "/v1/grants", { service_account_id: serviceAccountId, secret: name });
  return name;
}
