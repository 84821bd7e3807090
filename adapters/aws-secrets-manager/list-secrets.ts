import { ListSecretsCommand, type SecretListEntry, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";

/** ListSecrets page size; AWS allows 1 to 100. */
const PAGE_SIZE = 100;

export interface ListOptions {
  /** Only secrets whose name starts with this (ListSecrets filter `name`, a prefix match). */
  prefix?: string;
  region?: string;
  endpoint?: string;
  signal?: AbortSignal;
}

/**
 * Lists every secret of the account and region with ListSecrets, following NextToken.
 * Credentials, and the region and endpoint when not given, come from the SDK's default
 * chain and AWS_ENDPOINT_URL_SECRETS_MANAGER. Secrets planned for deletion are left out.
 */
export async function listAwsSecrets(options: ListOptions): Promise<SecretListEntry[]> {
  const client = new SecretsManagerClient({
    ...(options.region === undefined ? {} : { region: options.region }),
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
  });
  const filters = options.prefix === undefined ? undefined : [{ Key: "name" as const, Values: [options.prefix] }];
  const entries: SecretListEntry[] = [];
  try {
    let nextToken: string | undefined;
    do {
      const page = await client.send(new ListSecretsCommand({ MaxResults: PAGE_SIZE, NextToken: nextToken, Filters: filters }), { abortSignal: options.signal });
      entries.push(...(page.SecretList ?? []));
      nextToken = page.NextToken;
    } while (nextToken);
  } finally {
    client.destroy();
  }
  return entries;
}
