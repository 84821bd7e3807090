import { SecretsManagerClient, type SecretsManagerClientConfig } from "@aws-sdk/client-secrets-manager";
import type { AwsSecretSettings } from "./aws-settings.js";

/** Credentials for every client; without them the SDK's default provider chain finds them (environment, shared config, web identity, container and instance roles). */
export type AwsCredentials = NonNullable<SecretsManagerClientConfig["credentials"]>;

/**
 * SDK clients, one per distinct region, endpoint, timeouts and retry settings, kept for
 * the life of the adapter so that connections are reused.
 */
export class AwsClients {
  readonly #clients = new Map<string, SecretsManagerClient>();

  constructor(private readonly credentials: AwsCredentials | undefined) {}

  clientFor(settings: AwsSecretSettings): SecretsManagerClient {
    const key = JSON.stringify([settings.region ?? null, settings.endpoint ?? null, settings.timeouts, settings.retry]);
    let client = this.#clients.get(key);
    if (!client) {
      client = new SecretsManagerClient({
        ...(settings.region === undefined ? {} : { region: settings.region }),
        ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
        ...(this.credentials === undefined ? {} : { credentials: this.credentials }),
        retryMode: settings.retry.mode,
        maxAttempts: settings.retry.max_attempts,
        requestHandler: { connectionTimeout: settings.timeouts.connect_ms, requestTimeout: settings.timeouts.request_ms },
      });
      this.#clients.set(key, client);
    }
    return client;
  }

  close(): void {
    for (const client of this.#clients.values()) {
      client.destroy();
    }
    this.#clients.clear();
  }
}
