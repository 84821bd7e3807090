import type { BrokerClient } from "./broker-client.js";
import { CliError } from "./cli-error.js";

/** Returns the id of a service account given by id (sa_...) or by name. */
export async function resolveAccountId(client: BrokerClient, account: string): Promise<string> {
  if (/^sa_[0-9a-f]{24}$/.test(account)) {
    return account;
  }
  const match = (await client.listAll<{ id: string; name: string }>("/v1/service-accounts")).find((item) => item.name === account);
  if (!match) {
    throw new CliError(`no service account is named '${account}'; list them with: secrets-broker sa list`);
  }
  return match.id;
}
