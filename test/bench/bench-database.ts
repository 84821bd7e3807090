import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { type Db, openDatabase, rowsOf } from "../../broker/db/database.js";
import * as schema from "../../broker/db/schema.js";
import type { BackendKind } from "./bench-options.js";

/** A migrated database that the benchmark owns, and how to remove it. */
export interface BenchDatabase {
  kind: BackendKind;
  /** Where the data lives, for the report: a directory or a server address without credentials. */
  location: string;
  db: Db;
  /** The server's version string, e.g. "PostgreSQL 15.18 ...". */
  serverVersion: string;
  /** Connection settings for extra sessions (samplers), or undefined for PGlite. */
  url: string | undefined;
  close(): Promise<void>;
}

/**
 * Opens PGlite in a new temporary data directory, the storage that `npm start` uses by
 * default; the directory is deleted on close.
 */
export async function openPgliteBenchDatabase(): Promise<BenchDatabase> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "secrets-broker-bench-"));
  try {
    const database = await openDatabase({ dataDir });
    await database.migrate();
    return {
      kind: "pglite",
      location: `PGlite data directory ${dataDir}`,
      db: database.db,
      serverVersion: await selectVersion(database.db),
      url: undefined,
      close: async () => {
        await database.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Creates a new database on the server of `serverUrl`, migrates it and opens a pool of
 * `poolSize` connections. The broker's own pool has a fixed size of 10, so the benchmark
 * builds its own pool: with one connection per writer, 32 writers are 32 concurrent
 * transactions. The database is dropped on close.
 */
export async function openPostgresBenchDatabase(serverUrl: string, poolSize: number): Promise<BenchDatabase> {
  const name = `sbbench_${randomBytes(6).toString("hex")}`;
  await withAdminSession(serverUrl, (admin) => admin.unsafe(`create database ${name}`));

  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const dropDatabase = () => withAdminSession(serverUrl, (admin) => admin.unsafe(`drop database if exists ${name} with (force)`));

  try {
    const migrator = await openDatabase({ databaseUrl: url.toString() });
    try {
      await migrator.migrate();
    } finally {
      await migrator.close();
    }

    const client = postgres(url.toString(), { max: poolSize, onnotice: () => undefined });
    const db = drizzle({ client, schema }) as unknown as Db;
    return {
      kind: "postgres",
      location: `database ${name} on ${url.host}`,
      db,
      serverVersion: await selectVersion(db),
      url: url.toString(),
      close: async () => {
        await client.end({ timeout: 5 });
        await dropDatabase();
      },
    };
  } catch (error) {
    await dropDatabase();
    throw error;
  }
}

async function withAdminSession(serverUrl: string, work: (admin: postgres.Sql) => Promise<unknown>): Promise<void> {
  const admin = postgres(serverUrl, { max: 1, onnotice: () => undefined });
  try {
    await work(admin);
  } finally {
    await admin.end({ timeout: 5 });
  }
}

async function selectVersion(db: Db): Promise<string> {
  const result = await db.execute(sql`select version() as version`);
  return rowsOf<{ version: string }>(result)[0]?.version ?? "unknown";
}
