import { Agent, request } from "node:http";
import { JWT_BEARER_ASSERTION_TYPE } from "../../../broker/tokens/client-assertion.js";

/** Time after which one token request counts as failed and its connection is closed, in milliseconds. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Sends one token request and resolves with the HTTP status, or 0 when the request failed without one. */
export type SendTokenRequest = (assertion: string) => Promise<number>;

/** A keep-alive HTTP client of one broker's token endpoint. */
export interface TokenClient {
  send: SendTokenRequest;
  /** Closes every connection; call it when a run is over. */
  close(): void;
}

/**
 * Builds a client that posts `grant_type=client_credentials` with a client assertion to
 * `<address>/v1/token` over at most `maxSockets` keep-alive connections (node:http Agent).
 * The response body is read in full but not parsed, which keeps the client's CPU use small.
 * `checkFirstToken` confirms once that a 200 carries a token.
 */
export function createTokenClient(address: string, maxSockets: number): TokenClient {
  const url = new URL("/v1/token", address);
  const agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });

  const send: SendTokenRequest = (assertion) =>
    new Promise((resolve) => {
      const body = `grant_type=client_credentials&client_assertion_type=${encodeURIComponent(JWT_BEARER_ASSERTION_TYPE)}&client_assertion=${assertion}`;
      const outgoing = request(
        url,
        {
          method: "POST",
          agent,
          headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) },
          timeout: REQUEST_TIMEOUT_MS,
        },
        (response) => {
          response.on("data", () => undefined);
          response.on("end", () => resolve(response.statusCode ?? 0));
          response.on("error", () => resolve(0));
        },
      );
      outgoing.on("timeout", () => outgoing.destroy(new Error(`token request timed out after ${REQUEST_TIMEOUT_MS} ms`)));
      outgoing.on("error", () => resolve(0));
      outgoing.end(body);
    });

  return { send, close: () => agent.destroy() };
}

/** Requests one token with `fetch` and throws unless the broker returns 200 with an access token and a lease id. */
export async function checkFirstToken(address: string, assertion: string): Promise<void> {
  const response = await fetch(new URL("/v1/token", address), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: assertion }),
  });
  const text = await response.text();
  const json = response.status === 200 ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (typeof json["access_token"] !== "string" || typeof json["lease_id"] !== "string") {
    throw new Error(`the first token request returned ${response.status} without an access token and lease id: ${text.slice(0, 500)}`);
  }
}
