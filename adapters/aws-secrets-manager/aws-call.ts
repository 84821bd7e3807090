import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { AdapterCall } from "../contract.js";
import type { AwsClients } from "./aws-clients.js";
import { type AwsErrorContext, toAwsAdapterError } from "./aws-errors.js";
import { type AwsSecretSettings, parseAwsSettings } from "./aws-settings.js";

/** Region named in messages when neither the settings nor the ARN give one. */
const DEFAULT_REGION_LABEL = "the SDK's default region";

/** Options every command is sent with: the call's signal, so that the broker's timeout aborts the request. */
export interface SendOptions {
  abortSignal: AbortSignal;
}

/** One adapter call's settings, client and error context. */
export interface AwsCall {
  call: AdapterCall;
  settings: AwsSecretSettings;
  context: AwsErrorContext;
  /** Runs one AWS operation, named by `action` in errors, and maps what it throws to an `AdapterError`. */
  run<T>(action: string, work: (client: SecretsManagerClient, options: SendOptions) => Promise<T>): Promise<T>;
}

/** Validates the stored settings of the call's secret and picks its client. */
export function prepareAwsCall(clients: AwsClients, call: AdapterCall): AwsCall {
  const settings = parseAwsSettings(call.secret.kind, call.secret.settings);
  const client = clients.clientFor(settings);
  const context: AwsErrorContext = {
    secretName: call.secret.name,
    secretId: settings.secret_id,
    region: settings.region ?? DEFAULT_REGION_LABEL,
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
  };
  return {
    call,
    settings,
    context,
    async run(action, work) {
      try {
        return await work(client, { abortSignal: call.signal });
      } catch (error) {
        throw toAwsAdapterError(error, context, action);
      }
    },
  };
}
