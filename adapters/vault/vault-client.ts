import nodeVault from "node-vault";
import type { VaultConnection } from "./vault-settings.js";

export type NodeVaultClient = nodeVault.client;

/**
 * Builds a node-vault client for one connection. node-vault 0.12 falls back to VAULT_TOKEN,
 * VAULT_NAMESPACE, VAULT_PREFIX and VAULT_SKIP_VERIFY from the broker's environment. The
 * client is pinned to the settings instead, so that a secret's settings alone decide
 * where its requests go and with which TLS checks. Lists use GET with `?list=1`, because Node's
 * HTTP parser (and some proxies) reject the LIST method.
 */
export function createVaultClient(connection: VaultConnection): NodeVaultClient {
  const client = nodeVault({
    endpoint: connection.address,
    apiVersion: "v1",
    noCustomHTTPVerbs: true,
    requestOptions: {
      timeout: connection.timeout_seconds * 1000,
      strictSSL: true,
      ...(connection.ca === undefined ? {} : { ca: connection.ca }),
    },
  });
  const pinned = client as NodeVaultClient & { namespace: string; pathPrefix: string };
  pinned.token = "";
  pinned.namespace = connection.namespace ?? "";
  pinned.pathPrefix = "";
  return client;
}
