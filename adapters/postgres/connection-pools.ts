import { createHash } from "node:crypto";
import postgres from "postgres";
import type { PostgresConnectionSettings, PostgresSettings } from "./postgres-settings.js";

/** Admin connections per secret: one for a transaction, one for a concurrent call. */
const MAX_CONNECTIONS_PER_POOL = 2;
/** Seconds `close()` lets running queries finish before it closes their connections. */
const END_TIMEOUT_SECONDS = 5;
/** Shown in pg_stat_activity, so that operators can tell the broker's sessions apart. */
export const APPLICATION_NAME = "secrets-broker";

export interface PoolTimeouts {
  /** Seconds a connection attempt may take, TLS and login included. */
  connectTimeoutSeconds: number;
  /** Seconds an unused connection stays open. */
  idleTimeoutSeconds: number;
}

interface PoolEntry {
  fingerprint: string;
  password: string;
  sql: postgres.Sql;
}

/**
 * Admin connection pools, one per secret id. A pool is reused while the secret's
 * settings and the admin password stay the same, and replaced when either changes,
 * so that a rotated admin password takes effect on the next call.
 */
export class ConnectionPools {
  readonly #entries = new Map<string, PoolEntry>();

  constructor(private readonly timeouts: PoolTimeouts) {}

  /** Returns the pool of `secretId`; postgres.js connects lazily, on the first query. */
  poolFor(secretId: string, settings: PostgresSettings, password: string): postgres.Sql {
    const fingerprint = settingsFingerprint(settings);
    const entry = this.#entries.get(secretId);
    if (entry && entry.fingerprint === fingerprint && entry.password === password) {
      return entry.sql;
    }

    if (entry) {
      // Queries still running on the old pool get END_TIMEOUT_SECONDS to finish.
      void entry.sql.end({ timeout: END_TIMEOUT_SECONDS });
    }
    const sql = openPool(settings, password, this.timeouts);
    this.#entries.set(secretId, { fingerprint, password, sql });
    return sql;
  }

  /**
   * Closes every pool; calls made later open new ones. NOTE: postgres.js 3.4 keeps a
   * connection whose first query was cancelled while it was still connecting open until
   * the END_TIMEOUT_SECONDS deadline, so close() can take that long after an aborted call.
   */
  async closeAll(): Promise<void> {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(entries.map((entry) => entry.sql.end({ timeout: END_TIMEOUT_SECONDS })));
  }
}

function openPool(settings: PostgresSettings, password: string, timeouts: PoolTimeouts): postgres.Sql {
  const { connection } = settings;
  return postgres({
    host: connection.host,
    port: connection.port,
    database: connection.database,
    username: connection.username,
    password,
    ssl: sslOption(settings.connection),
    max: MAX_CONNECTIONS_PER_POOL,
    connect_timeout: timeouts.connectTimeoutSeconds,
    idle_timeout: timeouts.idleTimeoutSeconds,
    // Every CREATE ROLE and ALTER ROLE ... PASSWORD text is unique, so named prepared statements would only pile up.
    prepare: false,
    fetch_types: false,
    onnotice: () => undefined,
    connection: { application_name: APPLICATION_NAME },
  });
}

/** Maps the ssl setting to postgres.js: `require` encrypts without checking the certificate, as libpq's sslmode=require does. */
export function sslOption(connection: PostgresConnectionSettings): postgres.Options<{}>["ssl"] {
  const { ssl, host, ca } = connection;
  if (ssl === "disable") {
    return false;
  }
  if (ssl === "require") {
    return "require";
  }
  // Node checks the certificate against `host`, also when it is an IP address, which SNI cannot carry.
  return { rejectUnauthorized: true, host, ...(ca === undefined ? {} : { ca }) };
}

/** Computes the SHA-256 of the settings as JSON; `parsePostgresSettings` fixes the key order, so equal settings match. */
function settingsFingerprint(settings: PostgresSettings): string {
  return createHash("sha256").update(JSON.stringify(settings)).digest("hex");
}
