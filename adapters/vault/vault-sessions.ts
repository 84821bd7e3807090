import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { AdapterCall, SecretKind } from "../contract.js";
import { UpstreamTimeout } from "../errors.js";
import { CallAborted, raceAbort } from "../postgres/abortable.js";
import type { NodeVaultClient } from "./vault-client.js";
import { toAdapterError, VaultCredentialMissing, type VaultErrorContext } from "./vault-errors.js";
import { VaultSession, type VaultTokenEvent } from "./vault-session.js";
import { describeLocation, parseVaultSettings, type VaultSettings, type VaultSettingsOf } from "./vault-settings.js";

export interface VaultSessionsOptions {
  now: () => Date;
  logger: Pick<Logger, "info" | "warn"> | undefined;
  onTokenEvent: (event: VaultTokenEvent) => void;
}

/** A call's validated settings and a way to send requests with the broker's token, raced against the call's signal. */
export interface PreparedVaultCall<S extends VaultSettings> {
  settings: S;
  location: string;
  /** Sends requests through the session; maps failures to AdapterErrors naming `action`. */
  send<T>(action: string, request: (client: NodeVaultClient) => Promise<T>): Promise<T>;
}

/**
 * Vault sessions, one per connection, auth settings and credential. Secrets that share
 * them share one broker token. A changed credential (a rotated secret_id or token in its
 * local secret) gets a new session on the next call.
 */
export class VaultSessions {
  readonly #sessions = new Map<string, VaultSession>();

  constructor(private readonly options: VaultSessionsOptions) {}

  /** Validates the settings as `kind`, reads the Vault credential from its local secret and picks the session. */
  async prepare<K extends SecretKind>(call: AdapterCall, kind: K): Promise<PreparedVaultCall<VaultSettingsOf<K>>> {
    const settings = parseVaultSettings(kind, call.secret.settings);
    const location = describeLocation(settings);
    const session = await this.sessionFor(call, settings);

    const send = async <T>(action: string, request: (client: NodeVaultClient) => Promise<T>): Promise<T> => {
      const context: VaultErrorContext = { secretName: call.secret.name, location, action };
      try {
        return await raceAbort(call.signal, session.run(request));
      } catch (error) {
        if (error instanceof CallAborted) {
          throw new UpstreamTimeout(`the request to ${action} at ${location} for secret ${call.secret.name} timed out; retry later`);
        }
        throw toAdapterError(error, context);
      }
    };
    return { settings, location, send };
  }

  closeAll(): void {
    for (const session of this.#sessions.values()) {
      session.forget();
    }
    this.#sessions.clear();
  }

  private async sessionFor(call: AdapterCall, settings: VaultSettings): Promise<VaultSession> {
    const credential = await readCredential(call, settings);
    const key = createHash("sha256")
      .update(JSON.stringify([settings.connection, settings.auth]))
      .update("\0")
      .update(credential)
      .digest("hex");
    let session = this.#sessions.get(key);
    if (!session) {
      session = new VaultSession({ connection: settings.connection, auth: settings.auth, credential, ...this.options });
      this.dropReplaced(settings);
      this.#sessions.set(key, session);
    }
    return session;
  }

  /** Forgets sessions for the same connection and auth whose credential was replaced. */
  private dropReplaced(settings: VaultSettings): void {
    const prefix = JSON.stringify([settings.connection, settings.auth]);
    for (const [key, session] of this.#sessions) {
      if (session.describes(prefix)) {
        session.forget();
        this.#sessions.delete(key);
      }
    }
  }
}

async function readCredential(call: AdapterCall, settings: VaultSettings): Promise<string> {
  const { auth } = settings;
  const [secretName, field] = auth.method === "token" ? [auth.token_secret, auth.token_field] : [auth.secret_id_secret, auth.secret_id_field];
  let stored: Record<string, string>;
  try {
    stored = await raceAbort(call.signal, call.readLocalSecret(secretName));
  } catch (error) {
    if (error instanceof CallAborted) {
      throw new UpstreamTimeout(`reading local secret ${secretName} for secret ${call.secret.name} timed out; retry later`);
    }
    throw error;
  }
  const value = stored[field];
  if (typeof value !== "string" || value === "") {
    const setting = auth.method === "token" ? "auth.token_field" : "auth.secret_id_field";
    throw new VaultCredentialMissing(setting, `local secret ${secretName} has no field ${field} for secret ${call.secret.name}; store the Vault credential there or set ${setting}`);
  }
  return value;
}
