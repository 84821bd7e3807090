import { InvalidBrokerResponse } from "./errors.js";
import { sendRequest, type Transport } from "./transport.js";

/** The parts of the broker's RFC 8414 metadata the SDK uses. */
export interface BrokerMetadata {
  /** The issuer identifier: the `iss` of access tokens and the `aud` of client assertions. */
  issuer: string;
  tokenEndpoint: string;
}

export const METADATA_PATH = "/.well-known/oauth-authorization-server";

/** Reads the broker's authorization-server metadata (RFC 8414 section 3). */
export async function discoverBroker(transport: Transport, brokerUrl: string): Promise<BrokerMetadata> {
  const body = await sendRequest(transport, { method: "GET", url: `${brokerUrl}${METADATA_PATH}` });
  const document = (body ?? {}) as Record<string, unknown>;
  const issuer = document["issuer"];
  const tokenEndpoint = document["token_endpoint"];
  if (typeof issuer !== "string" || typeof tokenEndpoint !== "string") {
    throw new InvalidBrokerResponse(`GET ${METADATA_PATH}: the metadata lacks issuer or token_endpoint; is ${brokerUrl} a secrets-broker?`);
  }
  return { issuer, tokenEndpoint };
}
