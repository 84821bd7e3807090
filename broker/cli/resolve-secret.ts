import type { BrokerClient } from "./broker-client.js";
import { CliError } from "./cli-error.js";

/** Returns the id of a secret given by id (sec_...) or by name. */
export async function resolveSecretId(client: BrokerClient, secret: string): Promise<string> {
  if (/^sec_[0-9a-f]{24}$/.test(secret)) {
    return secret;
  }
  const matches = (await client.listAll("/v1/secrets", { name_prefix: secret })).filter((item: { name: string }) => item.name === secret);
  if (matches.length === 0) {
    throw new CliError(`no secret is named '${secret}'; list them with: secrets-broker secret list`);
  }
  return matches[0].id as string;
}
