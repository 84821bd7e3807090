import { eq, sql } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { serviceAccounts, workloadKeys } from "../db/schema.js";
import type { ServiceAccountRow } from "../register/service-accounts-service.js";
import { OAuthError } from "./oauth-error.js";

export type WorkloadKeyRow = typeof workloadKeys.$inferSelect;

/**
 * Version of an account that the token endpoint's issuance statement compares with the database before it writes
 * (see record-issuance.ts): the account's `revision`, which a trigger raises on every update
 * of the row, and `keySet`.
 */
export interface AccountVersion {
  revision: number;
  /** The account's keys as `keySetVersionSql` prints them, or null where no key was used (token exchange). */
  keySet: string | null;
}

/**
 * Prints the set of an account's registered keys as one string: each key's id and a SHA-256 of its
 * JWK, in byte order of the ids. Adding, removing or changing a key changes it. The snapshot
 * query and the issuance statement both use this expression, so they print it alike.
 */
export function keySetVersionSql(accountIdColumn: string): string {
  return `(select coalesce(string_agg(k.id || ':' || encode(sha256(convert_to(k.jwk::text, 'UTF8')), 'hex'), ',' order by k.id collate "C"), '')
    from workload_keys k where k.service_account_id = ${accountIdColumn})`;
}

/** A service account and its registered keys as read at one moment. */
export interface AccountSnapshot {
  account: ServiceAccountRow;
  keys: WorkloadKeyRow[];
  version: AccountVersion;
}

/** Snapshots kept per database; past this many the oldest entry is dropped. */
const MAX_CACHED_ACCOUNTS = 10_000;
/** A snapshot older than this is read again, so that unused entries do not linger. */
const MAX_SNAPSHOT_AGE_MS = 60_000;

interface CachedSnapshot {
  snapshot: AccountSnapshot;
  readAt: number;
}

const caches = new WeakMap<Db, Map<string, CachedSnapshot>>();
const queries = new WeakMap<Db, ReturnType<typeof prepareSnapshotQuery>>();

/**
 * Returns the account's snapshot from this process's cache, or reads it. Only a caller whose
 * write checks the version in the same statement may use a cached snapshot: the token
 * endpoint does, so a suspended account or a removed key is refused at once on every replica.
 */
export async function cachedAccountSnapshot(db: Db, id: string, now: number): Promise<AccountSnapshot> {
  const cached = cacheOf(db).get(id);
  if (cached && now - cached.readAt < MAX_SNAPSHOT_AGE_MS) {
    return cached.snapshot;
  }
  const snapshot = await readAccountSnapshot(db, id);
  remember(db, id, { snapshot, readAt: now });
  return snapshot;
}

/** Drops a snapshot that the database no longer matches. */
export function forgetAccountSnapshot(db: Db, id: string): void {
  cacheOf(db).delete(id);
}

/** Reads the account and its registered keys in one prepared query. */
export async function readAccountSnapshot(db: Db, id: string): Promise<AccountSnapshot> {
  let query = queries.get(db);
  if (!query) {
    query = prepareSnapshotQuery(db);
    queries.set(db, query);
  }

  const rows = await query.execute({ id });
  if (rows.length === 0) {
    throw new OAuthError("invalid_client", "client assertion sub is not a registered service account", "unknown_client");
  }
  const keys = rows.flatMap((row) => (row.key ? [row.key] : []));
  const { account, keySet } = rows[0]!;
  return { account, keys, version: { revision: account.revision, keySet } };
}

function prepareSnapshotQuery(db: Db) {
  return db
    .select({
      account: serviceAccounts,
      key: workloadKeys,
      keySet: sql<string>`${sql.raw(keySetVersionSql('"service_accounts"."id"'))}`,
    })
    .from(serviceAccounts)
    .leftJoin(workloadKeys, eq(workloadKeys.serviceAccountId, serviceAccounts.id))
    .where(eq(serviceAccounts.id, sql.placeholder("id")))
    .prepare("token_account_snapshot");
}

function cacheOf(db: Db): Map<string, CachedSnapshot> {
  let cache = caches.get(db);
  if (!cache) {
    cache = new Map();
    caches.set(db, cache);
  }
  return cache;
}

function remember(db: Db, id: string, entry: CachedSnapshot): void {
  const cache = cacheOf(db);
  cache.delete(id);
  cache.set(id, entry);
  if (cache.size > MAX_CACHED_ACCOUNTS) {
    cache.delete(cache.keys().next().value!);
  }
}
