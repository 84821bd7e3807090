import type postgres from "postgres";
import type { AdapterCall, SecretKind } from "../contract.js";
import { UpstreamRejected } from "../errors.js";
import { CallAborted, raceAbort } from "./abortable.js";
import type { ConnectionPools } from "./connection-pools.js";
import { type ErrorContext, toAdapterError } from "./postgres-errors.js";
import { parsePostgresSettings, type PostgresSettingsOf } from "./postgres-settings.js";

/** Settings and error context of one call, before it connects anywhere. */
export interface CallSettings<S> {
  settings: S;
  context: ErrorContext;
}

/** Settings, admin pool and error context that every call that changes roles starts from. */
export interface PreparedCall<S> extends CallSettings<S> {
  pool: postgres.Sql;
}

/** Validates the stored settings of the call's secret as `kind` and builds its error context. */
export function callSettings<K extends SecretKind>(call: AdapterCall, kind: K): CallSettings<PostgresSettingsOf<K>> {
  const settings = parsePostgresSettings(kind, call.secret.settings);
  const { connection } = settings;
  const context: ErrorContext = {
    secretName: call.secret.name,
    server: `${connection.host}:${connection.port}/${connection.database}`,
    adminRole: connection.username,
    passwordSecret: connection.password_secret,
  };
  return { settings, context };
}

/** Validates the settings, reads the admin password from its local secret and picks the admin pool. */
export async function prepareCall<K extends SecretKind>(
  pools: ConnectionPools,
  call: AdapterCall,
  kind: K,
): Promise<PreparedCall<PostgresSettingsOf<K>>> {
  const { settings, context } = callSettings(call, kind);
  const { connection } = settings;

  let adminSecret: Record<string, string>;
  try {
    if (call.signal.aborted) {
      throw new CallAborted("the call was aborted before it started", { cause: call.signal.reason });
    }
    adminSecret = await raceAbort(call.signal, call.readLocalSecret(connection.password_secret));
  } catch (error) {
    throw toAdapterError(error, context, `read local secret ${connection.password_secret}`);
  }

  const password = adminSecret[connection.password_field];
  if (typeof password !== "string" || password === "") {
    throw new UpstreamRejected(
      `local secret ${connection.password_secret} has no field ${connection.password_field} for secret ${call.secret.name}; ` +
        "store the admin password there or set connection.password_field",
    );
  }
  return { settings, pool: pools.poolFor(call.secret.id, settings, password), context };
}
