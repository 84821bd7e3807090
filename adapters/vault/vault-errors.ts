import { AdapterError, UpstreamNotFound, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable } from "../errors.js";

/** KV v2 has no such key: Vault returned 404 with an empty `errors` list. */
export class VaultSecretMissing extends UpstreamNotFound {
  override name = "VaultSecretMissing";
}

/** The KV v2 version exists but was deleted or destroyed: Vault returned 404 with the version's metadata. */
export class VaultVersionDeleted extends UpstreamNotFound {
  override name = "VaultVersionDeleted";
}

/** No engine serves the path (wrong mount, or a mount of another type). */
export class VaultPathUnsupported extends UpstreamRejected {
  override name = "VaultPathUnsupported";
}

/** Vault returned 403: the broker's token lacks a policy for the path, or it is no longer valid. */
export class VaultPermissionDenied extends UpstreamRejected {
  override name = "VaultPermissionDenied";
}

/** Vault returned 503: it is sealed or in standby without forwarding. */
export class VaultSealed extends UpstreamUnavailable {
  override name = "VaultSealed";
}

/** The local secret the settings name has no Vault credential in the field `setting` names. */
export class VaultCredentialMissing extends UpstreamRejected {
  override name = "VaultCredentialMissing";

  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
  }
}

/** Fields of a node-vault ApiResponseError; node-vault exports no class to test with instanceof. */
export interface VaultResponseError {
  message: string;
  response: { statusCode: number; body: unknown };
}

/**
 * Names that messages give to what a user sets to fix each kind of failure: the secret's
 * settings for the broker, flags or environment variables for the CLI.
 */
export interface VaultFixNames {
  address: string;
  ca: string;
  /** The token whose policies a permission denial is about. */
  token: string;
  mount: string;
}

/** The names the broker's messages use: the secret's settings and its own token. */
export const SETTING_FIX_NAMES: VaultFixNames = {
  address: "connection.address",
  ca: "connection.ca",
  token: "the broker's Vault token",
  mount: "the mount in the settings",
};

/** Identifies the request in messages: the secret and the Vault path, never a value or a token. */
export interface VaultErrorContext {
  /** The broker secret the request serves, when it serves one. */
  secretName?: string;
  /** `address[ namespace ns] path`. */
  location: string;
  action: string;
  /** Names of what the user sets to fix a failure, the secret's settings by default. */
  fixes?: VaultFixNames;
}

const NETWORK_ERROR_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EPIPE", "ERR_SOCKET_CLOSED"]);
const TIMEOUT_ERROR_CODES = new Set(["ECONNABORTED", "ETIMEDOUT", "ERR_CANCELED"]);
const RETRYABLE_STATUSES = new Set([429, 500, 502, 504]);
/** Maximum length of the part of a Vault error message copied into a broker message. */
const MAX_VAULT_MESSAGE_LENGTH = 200;
/** Vault service and batch tokens, old and new formats, in case an error message ever echoes one. */
const TOKEN_PATTERN = /\b(?:hv[sbr]\.[A-Za-z0-9_-]+|[sbr]\.[A-Za-z0-9]{20,})/g;

/**
 * Returns a stand-in for `error` to keep as `cause`: its message, code and status only.
 * An AxiosError carries the request config, X-Vault-Token header and body included,
 * which must not travel with the error into logs.
 */
export function safeCause(error: unknown): Error {
  const cause = new Error(error instanceof Error ? error.message : String(error)) as Error & { code?: string; status?: number };
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") cause.code = code;
  const status = vaultStatus(error);
  if (status !== undefined) cause.status = status;
  return cause;
}

export function isVaultResponseError(error: unknown): error is VaultResponseError {
  const response = (error as { response?: { statusCode?: unknown } } | null)?.response;
  return error instanceof Error && typeof response?.statusCode === "number";
}

/** Returns Vault's HTTP status when `error` is a node-vault response error. */
export function vaultStatus(error: unknown): number | undefined {
  return isVaultResponseError(error) ? error.response.statusCode : undefined;
}

/** Returns Vault's first error message, shortened and with anything shaped like a token removed. */
export function vaultMessage(error: VaultResponseError): string {
  const body = error.response.body as { errors?: unknown } | undefined;
  const first = Array.isArray(body?.errors) && typeof body.errors[0] === "string" ? body.errors[0] : `status ${error.response.statusCode}`;
  return first.replace(TOKEN_PATTERN, "[token]").replace(/\s+/g, " ").trim().slice(0, MAX_VAULT_MESSAGE_LENGTH);
}

/**
 * Maps what node-vault or Node threw to an `AdapterError`; the original stays as
 * `cause`. A 404 is classified by its body: empty `errors` is a missing key, a body with
 * version metadata a deleted or destroyed version, a "no handler" message a wrong mount.
 */
export function toAdapterError(error: unknown, context: VaultErrorContext): unknown {
  if (error instanceof AdapterError) {
    return error;
  }
  const on = context.secretName === undefined ? `at ${context.location}` : `at ${context.location} for secret ${context.secretName}`;
  const fixes = context.fixes ?? SETTING_FIX_NAMES;
  if (isVaultResponseError(error)) {
    return responseError(error, context, on, fixes);
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && TIMEOUT_ERROR_CODES.has(code)) {
    return new UpstreamTimeout(`Vault did not answer the request to ${context.action} ${on} in time (${code}); retry later`, { cause: safeCause(error) });
  }
  if (typeof code === "string" && NETWORK_ERROR_CODES.has(code)) {
    return new UpstreamUnavailable(
      `Vault is unreachable ${on} (${code}); check that it is running and that ${fixes.address} is right`,
      { cause: safeCause(error) },
    );
  }
  if (typeof code === "string" && (code.startsWith("ERR_TLS_") || code.includes("CERT"))) {
    return new UpstreamRejected(`TLS verification of Vault failed ${on} (${code}); check ${fixes.ca} and the server certificate`, { cause: safeCause(error) });
  }
  return error;
}

function responseError(error: VaultResponseError, context: VaultErrorContext, on: string, fixes: VaultFixNames): AdapterError {
  const status = error.response.statusCode;
  const message = vaultMessage(error);
  if (status === 404) {
    return notFoundError(error, on, fixes);
  }
  if (status === 403) {
    return new VaultPermissionDenied(
      `Vault denied permission to ${context.action} ${on}; give ${fixes.token} a policy that allows it`,
      { cause: safeCause(error) },
    );
  }
  if (status === 503) {
    return new VaultSealed(`Vault is sealed or unavailable ${on} (503: ${message}); retry after it is unsealed`, { cause: safeCause(error) });
  }
  if (RETRYABLE_STATUSES.has(status)) {
    return new UpstreamUnavailable(`Vault failed to ${context.action} ${on} (${status}: ${message}); retry later`, { cause: safeCause(error) });
  }
  if (status === 405) {
    return new VaultPathUnsupported(`Vault does not support the request to ${context.action} ${on} (405); check the mount type`, { cause: safeCause(error) });
  }
  return new UpstreamRejected(`Vault rejected the request to ${context.action} ${on} (${status}: ${message})`, { cause: safeCause(error) });
}

function notFoundError(error: VaultResponseError, on: string, fixes: VaultFixNames): AdapterError {
  const body = error.response.body as { errors?: unknown; data?: { metadata?: { deletion_time?: unknown; destroyed?: unknown; version?: unknown } } } | undefined;
  const metadata = body?.data?.metadata;
  if (metadata) {
    const state = metadata.destroyed === true ? "destroyed" : "deleted";
    return new VaultVersionDeleted(
      `version ${String(metadata.version)} was ${state} ${on}; undelete it in Vault, or rotate the secret to write a new version`,
      { cause: safeCause(error) },
    );
  }
  if (Array.isArray(body?.errors) && body.errors.length > 0) {
    return new VaultPathUnsupported(
      `no Vault engine serves the path ${on} (${vaultMessage(error)}); check ${fixes.mount}`,
      { cause: safeCause(error) },
    );
  }
  return new VaultSecretMissing(`Vault has no secret ${on}; write it in Vault first or correct the path`, { cause: safeCause(error) });
}
