import type { BrokerMetadata } from "./discovery.js";
import { InvalidBrokerResponse } from "./errors.js";
import type { Identity } from "./identity.js";
import { sendRequest, type Transport } from "./transport.js";

/** A token endpoint response (RFC 6749 section 5.1, RFC 8693 section 2.2.1) with the broker's lease id. */
export interface TokenResponse {
  accessToken: string;
  tokenType: string;
  expiresIn: number;
  scope: string;
  leaseId: string | null;
}

/** A `POST /v1/credentials` response, in the Vault lease shape. */
export interface CredentialResponse {
  leaseId: string;
  leaseDuration: number;
  renewable: boolean;
  data: Record<string, string>;
  version: string | null;
}

/** A credential lease renewal: what was granted, and the secret's current version. */
export interface RenewResponse {
  leaseDuration: number;
  renewable: boolean;
  version: string | null;
  currentVersion: string | null;
}

const FORM = "application/x-www-form-urlencoded";
const JSON_TYPE = "application/json";

/** Asks the token endpoint for an access token; each attempt proves the identity afresh. */
export async function requestToken(
  transport: Transport,
  metadata: BrokerMetadata,
  identity: Identity,
  target: { audience: string | undefined; scope: string },
): Promise<TokenResponse> {
  const buildBody = async () => {
    const form = new URLSearchParams(await identity.tokenRequest(metadata));
    if (target.audience !== undefined) form.set("audience", target.audience);
    if (target.scope !== "") form.set("scope", target.scope);
    return form.toString();
  };
  const body = record(await sendRequest(transport, { method: "POST", url: metadata.tokenEndpoint, headers: { "content-type": FORM }, body: buildBody }), "POST token");
  return {
    accessToken: requireString(body, "access_token", "token response"),
    tokenType: requireString(body, "token_type", "token response"),
    expiresIn: requireSeconds(body, "expires_in", "token response"),
    scope: typeof body["scope"] === "string" ? body["scope"] : target.scope,
    leaseId: typeof body["lease_id"] === "string" ? body["lease_id"] : null,
  };
}

/** `POST /v1/credentials`: a new leased credential for `secret`. */
export async function issueCredential(transport: Transport, brokerUrl: string, accessToken: string, secret: string, ttl: number | undefined): Promise<CredentialResponse> {
  const body = record(
    await sendRequest(transport, {
      method: "POST",
      url: `${brokerUrl}/v1/credentials`,
      headers: bearer(accessToken),
      body: JSON.stringify(ttl === undefined ? { secret } : { secret, ttl }),
    }),
    "credential",
  );
  const data = body["data"];
  if (!data || typeof data !== "object" || Object.values(data).some((value) => typeof value !== "string")) {
    throw new InvalidBrokerResponse("POST /v1/credentials: the answer's data is not an object of strings");
  }
  return {
    leaseId: requireString(body, "lease_id", "credential"),
    leaseDuration: requireSeconds(body, "lease_duration", "credential"),
    renewable: body["renewable"] === true,
    data: data as Record<string, string>,
    version: typeof body["version"] === "string" ? body["version"] : null,
  };
}

/** `POST /v1/leases/{id}/renew` with an increment in seconds. */
export async function renewLease(transport: Transport, brokerUrl: string, accessToken: string, leaseId: string, increment: number): Promise<RenewResponse> {
  const body = record(
    await sendRequest(transport, { method: "POST", url: `${brokerUrl}/v1/leases/${leaseId}/renew`, headers: bearer(accessToken), body: JSON.stringify({ increment }) }),
    "renewal",
  );
  return {
    leaseDuration: requireSeconds(body, "lease_duration", "renewal"),
    renewable: body["renewable"] === true,
    version: typeof body["version"] === "string" ? body["version"] : null,
    currentVersion: typeof body["current_version"] === "string" ? body["current_version"] : null,
  };
}

/** `POST /v1/leases/{id}/revoke`: ends the lease and its children; an ended lease is not an error. */
export async function revokeLease(transport: Transport, brokerUrl: string, accessToken: string, leaseId: string, reason: string): Promise<void> {
  await sendRequest(transport, { method: "POST", url: `${brokerUrl}/v1/leases/${leaseId}/revoke`, headers: bearer(accessToken), body: JSON.stringify({ reason }) });
}

function bearer(accessToken: string): Record<string, string> {
  return { authorization: `Bearer ${accessToken}`, "content-type": JSON_TYPE };
}

function record(body: unknown, what: string): Record<string, unknown> {
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new InvalidBrokerResponse(`the broker's ${what} response is not a JSON object`);
  }
  return body as Record<string, unknown>;
}

function requireString(body: Record<string, unknown>, field: string, what: string): string {
  const value = body[field];
  if (typeof value !== "string" || value === "") {
    throw new InvalidBrokerResponse(`the broker's ${what} response is missing ${field}`);
  }
  return value;
}

function requireSeconds(body: Record<string, unknown>, field: string, what: string): number {
  const value = body[field];
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new InvalidBrokerResponse(`the broker's ${what} response is missing a number of seconds in ${field}`);
  }
  return value;
}
