import { readFile } from "node:fs/promises";
import path from "node:path";
import { AwsSecretsManagerAdapter } from "../../../adapters/aws-secrets-manager/aws-adapter.js";
import type { AdapterCall, SecretData, SecretRef } from "../../../adapters/contract.js";
import { type BrokerProcess, startBrokerProcess } from "../broker-process.js";
import { AwsStandin, STANDIN_REGION } from "./standin-server.js";
import type { StoredSecret } from "./standin-store.js";

/**
 * Keeps the SDK away from this machine's AWS configuration: no shared config or
 * credentials file, no profile, no credentials or region from the environment. Tests
 * give credentials and the endpoint explicitly. Call it before any client is built.
 */
export function isolateAwsEnvironment(): void {
  process.env["AWS_CONFIG_FILE"] = "/nonexistent/aws-config";
  process.env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/aws-credentials";
  process.env["AWS_EC2_METADATA_DISABLED"] = "true";
  for (const name of ["AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"]) {
    delete process.env[name];
  }
}

/** Starts a stand-in with the environment isolated. */
export async function startAwsStandin(): Promise<AwsStandin> {
  isolateAwsEnvironment();
  return AwsStandin.start();
}

/** Builds an adapter that signs with the stand-in's static test credentials. */
export function standinAdapter(standin: AwsStandin): AwsSecretsManagerAdapter {
  return new AwsSecretsManagerAdapter({ credentials: standin.credentials });
}

/** Adapter settings for `secretId` on the stand-in; `extra` adds or replaces settings. */
export function standinSettings(standin: AwsStandin, secretId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { secret_id: secretId, region: STANDIN_REGION, endpoint: standin.endpoint, retry: { mode: "standard", max_attempts: 3 }, ...extra };
}

/** Creates a secret on the stand-in with a first AWSCURRENT version holding `value` (JSON-encoded unless a string). */
export function seedSecret(standin: AwsStandin, name: string, value: string | Record<string, unknown>, extra: Partial<StoredSecret> = {}): StoredSecret {
  const secretString = typeof value === "string" ? value : JSON.stringify(value);
  return standin.store.create(name, { secretString }, undefined, extra);
}

/** Builds an AdapterCall for a static AWS secret with these settings. */
export function awsCall(settings: Record<string, unknown>, options: { signal?: AbortSignal; secret?: Partial<SecretRef> } = {}): AdapterCall {
  return {
    secret: { id: "sec_aws_test", name: "aws/test", kind: "static", settings, generate: null, ...options.secret },
    signal: options.signal ?? new AbortController().signal,
    readLocalSecret: async (name: string): Promise<SecretData> => {
      throw new Error(`no local secret ${name}`);
    },
  };
}

/** Labels of each version of a stand-in secret, deprecated ones included as []. */
export function labelsOf(secret: StoredSecret): Record<string, string[]> {
  return Object.fromEntries([...secret.versions.values()].map((version) => [version.versionId, [...version.stages].sort()]));
}

/**
 * Starts a broker process that finds the stand-in through AWS_ENDPOINT_URL_SECRETS_MANAGER
 * and takes its credentials from the environment, as the SDK's default chain does, with no
 * shared config. Returns it with the environment that runs the CLI as its first admin.
 */
export async function startStandinBroker(standin: AwsStandin): Promise<{ broker: BrokerProcess; asAdmin: NodeJS.ProcessEnv }> {
  const broker = await startBrokerProcess({
    AWS_ACCESS_KEY_ID: standin.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: standin.credentials.secretAccessKey,
    AWS_REGION: STANDIN_REGION,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: standin.endpoint,
    AWS_CONFIG_FILE: "/nonexistent/aws-config",
    AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/aws-credentials",
    AWS_EC2_METADATA_DISABLED: "true",
  });
  const adminToken = (await readFile(path.join(broker.dataDir, "admin-token"), "utf8")).trim();
  return { broker, asAdmin: { BROKER_TOKEN: adminToken } };
}
