import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import * as schema from "./schema.js";

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
/** Either the database or an open transaction: what a query function runs on. */
export type Executor = Db | Tx;

/** An open broker database with the means to migrate and close it. */
export interface Database {
  db: Db;
  kind: "pglite" | "postgres";
  migrate(): Promise<void>;
  close(): Promise<void>;
}

/** Migrations ship beside the compiled code: `<package>/migrations`. */
export const MIGRATIONS_DIR = path.resolve(fileURLToPath(new URL(".", import.meta.url)), findPackageRootOffset());

function findPackageRootOffset(): string {
  // Compiled: dist/broker/db -> ../../../migrations; from source (tests): broker/db -> ../../migrations.
  return import.meta.url.includes("/dist/broker/") ? "../../../migrations" : "../../migrations";
}

/** Postgres connection pool size per broker process. */
const POSTGRES_POOL_SIZE = 10;

export interface OpenOptions {
  databaseUrl?: string | undefined;
  /** PGlite data directory; `undefined` keeps the database in memory (tests). */
  dataDir?: string | undefined;
}

/** Opens PostgreSQL when a URL is given, else PGlite in the data directory. */
export async function openDatabase(options: OpenOptions): Promise<Database> {
  if (options.databaseUrl) {
    return openPostgres(options.databaseUrl);
  }
  return openPglite(options.dataDir);
}

async function openPglite(dataDir: string | undefined): Promise<Database> {
  if (dataDir) {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
  }
  const client = dataDir ? new PGlite(path.join(dataDir, "pgdata")) : new PGlite();
  await client.waitReady;
  const db = drizzlePglite({ client, schema }) as unknown as Db;
  return {
    db,
    kind: "pglite",
    migrate: async () => {
      await migratePglite(drizzlePglite({ client, schema }), { migrationsFolder: MIGRATIONS_DIR });
    },
    close: async () => {
      await client.close();
    },
  };
}

async function openPostgres(url: string): Promise<Database> {
  const client = postgres(url, { max: POSTGRES_POOL_SIZE, onnotice: () => undefined });
  const db = drizzlePostgres({ client, schema }) as unknown as Db;
  return {
    db,
    kind: "postgres",
    migrate: async () => {
      await migratePostgres(drizzlePostgres({ client, schema }), { migrationsFolder: MIGRATIONS_DIR });
    },
    close: async () => {
      await client.end({ timeout: 5 });
    },
  };
}

/** Rows of a raw `execute()` result; PGlite wraps them in `{ rows }`, postgres.js returns an array. */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) {
    return result as T[];
  }
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

/** Returns true when the database answers and every shipped migration has been applied. */
export async function isReady(db: Db, expectedMigrations: number): Promise<boolean> {
  const result = await db.execute(sql`select count(*)::int as applied from drizzle.__drizzle_migrations`);
  const applied = rowsOf<{ applied: number }>(result)[0]?.applied ?? 0;
  return applied >= expectedMigrations;
}
