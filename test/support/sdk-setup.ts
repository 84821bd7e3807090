import { generateKeyPairSync } from "node:crypto";
import { FUTURE_EXPIRY, uniqueName } from "./register-fixtures.js";

export const READ_SCOPE = "secrets:read";

/** Calls the operator API with the admin token and returns the JSON body; throws unless the status is `status`. */
export type AdminCall = (status: number, method: "GET" | "POST" | "PATCH", route: string, body?: unknown) => Promise<any>;

export function adminCaller(address: string, adminToken: string): AdminCall {
  return async function callAsAdmin(status, method, route, body) {
    const response = await fetch(`${address}${route}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status !== status) {
      throw new Error(`${method} ${route}: expected ${status}, got ${response.status}: ${text}`);
    }
    return text === "" ? null : JSON.parse(text);
  };
}

/** A service account with a registered P-256 key, and the private JWK the SDK signs with. */
export interface SdkWorkload {
  accountId: string;
  kid: string;
  privateJwk: Record<string, unknown>;
}

/** Registers an application, a service account allowed `secrets:read` and `db:orders`, and its key. */
export async function registerWorkload(admin: AdminCall, fields: Record<string, unknown> = {}): Promise<SdkWorkload> {
  const application = await admin(201, "POST", "/v1/applications", { name: uniqueName("sdk-app"), technical_owner: "team-orders@example.com" });
  const account = await admin(201, "POST", "/v1/service-accounts", {
    name: uniqueName("sdk-account"),
    application_id: application.id,
    technical_owner: "dana@example.com",
    expires_at: FUTURE_EXPIRY,
    allowed_scopes: [READ_SCOPE, "db:orders"],
    ...fields,
  });
  const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const key = await admin(201, "POST", `/v1/service-accounts/${account.id}/keys`, { jwk: pair.publicKey.export({ format: "jwk" }) });
  return { accountId: account.id, kid: key.kid, privateJwk: { ...pair.privateKey.export({ format: "jwk" }), kid: key.kid } };
}

/** Creates a generated local secret and a grant of it to the account; returns the secret's id and name. */
export async function grantedSecret(admin: AdminCall, accountId: string, fields: Record<string, unknown> = {}): Promise<{ id: string; name: string }> {
  const secret = await admin(201, "POST", "/v1/secrets", {
    name: `sdk/${uniqueName("secret")}`,
    adapter: "local",
    kind: "static",
    owner: "team-payments",
    generate: { length: 32 },
    default_ttl: 60,
    ...fields,
  });
  await admin(201, "POST", "/v1/grants", {
    service_account_id: accountId,
    secret: secret.name,
    scopes: [READ_SCOPE],
    approved_by: "alice@example.com",
    justification: "CHG-1234",
  });
  return { id: secret.id, name: secret.name };
}
