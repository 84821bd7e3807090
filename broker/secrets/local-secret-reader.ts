import type { BrokerDeps } from "../deps.js";
import { InvalidState, UpstreamFailed } from "../errors.js";
import type { LocalSecretReader } from "./adapter-registry.js";
import { toSecretRef, toVersionRef } from "./secret-views.js";
import { currentVersion, findLiveSecretByName, LOCAL_ADAPTER } from "./secrets-service.js";

/**
 * Reads the current value of a static secret kept by the local adapter, for adapter
 * settings that name one (a PostgreSQL admin password, a Vault AppRole secret_id).
 * Must not be called inside an open transaction: it reads through the shared pool.
 */
export function localSecretReader(deps: Pick<BrokerDeps, "db" | "clock" | "adapters">): LocalSecretReader {
  return async function readLocalSecret(name) {
    const secret = await findLiveSecretByName(deps.db, name);
    if (!secret || secret.adapter !== LOCAL_ADAPTER || secret.kind !== "static") {
      throw new InvalidState(`adapter settings refer to local secret '${name}', which does not exist; create it with adapter local`);
    }
    const version = await currentVersion(deps.db, secret);
    if (!version) {
      throw new InvalidState(`local secret '${name}' has no current version`);
    }
    const issued = await deps.adapters.call(LOCAL_ADAPTER, toSecretRef(secret), "issue", refuseNestedReads, (adapter, call) =>
      adapter.issue(call, { leaseId: "", expiresAt: deps.clock.now(), current: toVersionRef(version) }),
    );
    return issued.data;
  };
}

async function refuseNestedReads(name: string): Promise<never> {
  throw new UpstreamFailed("upstream_rejected", `local secret '${name}' cannot be read while reading another local secret`, false);
}
