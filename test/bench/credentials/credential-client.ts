import { Agent, request } from "node:http";
import { JWT_BEARER_ASSERTION_TYPE } from "../../../broker/tokens/client-assertion.js";

/** Time after which one credential request counts as failed and its connection is closed, in milliseconds. */
const REQUEST_TIMEOUT_MS = 30_000;

/** A keep-alive HTTP client of one broker's credentials endpoint, for one secret. */
export interface CredentialClient {
  /** Sends one credential request with `accessToken` and resolves with the HTTP status, or 0 when the request failed without one. */
  send(accessToken: string): Promise<number>;
  /** Closes every connection. Call it when a run is over. */
  close(): void;
}

/**
 * Builds a client that posts `{"secret": secretName, "ttl": ttlSeconds}` to
 * `<address>/v1/credentials` over at most `maxSockets` keep-alive connections (node:http
 * Agent). The response body is read in full but not parsed, which keeps the client's CPU
 * use small. `checkFirstCredential` checks the shape of a response once.
 */
export function createCredentialClient(address: string, secretName: string, ttlSeconds: number, maxSockets: number): CredentialClient {
  const url = new URL("/v1/credentials", address);
  const agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  const body = JSON.stringify({ secret: secretName, ttl: ttlSeconds });
  const contentLength = Buffer.byteLength(body);

  const send = (accessToken: string) =>
    new Promise<number>((resolve) => {
      const outgoing = request(
        url,
        {
          method: "POST",
          agent,
          headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json", "content-length": contentLength },
          timeout: REQUEST_TIMEOUT_MS,
        },
        (response) => {
          response.on("data", () => undefined);
          response.on("end", () => resolve(response.statusCode ?? 0));
          response.on("error", () => resolve(0));
        },
      );
      outgoing.on("timeout", () => outgoing.destroy(new Error(`credential request timed out after ${REQUEST_TIMEOUT_MS} ms`)));
      outgoing.on("error", () => resolve(0));
      outgoing.end(body);
    });

  return { send, close: () => agent.destroy() };
}

/** Requests an access token for the broker's own audience with one client assertion, and returns it. */
export async function requestAccessToken(address: string, assertion: string): Promise<string> {
  const response = await fetch(new URL("/v1/token", address), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: assertion }),
  });
  const text = await response.text();
  const json = response.status === 200 ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (typeof json["access_token"] !== "string") {
    throw new Error(`POST /v1/token returned ${response.status} without an access token: ${text.slice(0, 500)}`);
  }
  return json["access_token"];
}

/**
 * Requests one credential with `fetch` and throws unless the broker returns 200 with a
 * lease id and every field in `expectedFields`. Returns the credential's data, which the
 * caller must not print.
 */
export async function checkFirstCredential(
  address: string,
  accessToken: string,
  secretName: string,
  ttlSeconds: number,
  expectedFields: string[],
): Promise<Record<string, string>> {
  const response = await fetch(new URL("/v1/credentials", address), {
    method: "POST",
    headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" },
    body: JSON.stringify({ secret: secretName, ttl: ttlSeconds }),
  });
  const text = await response.text();
  if (response.status !== 200) {
    // A non-200 response carries an error that names the failed check, not a credential, so printing it is safe.
    throw new Error(`the first credential request for ${secretName} returned ${response.status}: ${text.slice(0, 500)}`);
  }

  const json = JSON.parse(text) as { lease_id?: unknown; data?: Record<string, string> };
  if (typeof json.lease_id !== "string") {
    throw new Error(`the first credential response for ${secretName} has no lease id`);
  }
  const missing = expectedFields.filter((field) => typeof json.data?.[field] !== "string");
  if (missing.length > 0) {
    throw new Error(`the first credential response for ${secretName} has no data field ${missing.join(", ")}`);
  }
  return json.data!;
}
