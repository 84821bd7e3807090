/**
 * secrets-broker SDK: proves a workload's identity, caches short-lived access tokens and
 * keeps leased credentials valid while the application uses them. Imports nothing from
 * the server; runs on Node 20 or later with the global fetch.
 */
export { type AccessToken, type AccessTokenRequest } from "./access-tokens.js";
export { type ClientOptions, type CredentialOptions, createClient, SecretsBrokerClient, type WatchOptions } from "./client.js";
export { type Clock, systemClock } from "./clock.js";
export { type ChangeListener, type Credential, type ErrorListener } from "./credential-holder.js";
export type { BrokerMetadata } from "./discovery.js";
export {
  BrokerProblemError,
  BrokerUnavailableError,
  ClientClosed,
  InvalidBrokerResponse,
  InvalidConfiguration,
  OAuthError,
  SecretsBrokerError,
  type SdkErrorCode,
} from "./errors.js";
export { federatedToken, type FederatedTokenOptions, type Identity, privateKeyJwt, type PrivateKeyJwtOptions } from "./identity.js";
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from "./retry.js";
export type { DebugSink } from "./transport.js";
