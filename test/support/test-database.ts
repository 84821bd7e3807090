import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { type Database, openDatabase } from "../../broker/db/database.js";

/** A database created on the PostgreSQL server of DATABASE_URL for one test, and how to drop it. */
export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

/** Creates an empty database on the DATABASE_URL server, or returns undefined when no server is configured. */
export async function createScratchDatabase(prefix = "sbtest"): Promise<ScratchDatabase | undefined> {
  const serverUrl = process.env["DATABASE_URL"];
  if (!serverUrl) {
    return undefined;
  }
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  await withServer(serverUrl, (sql) => sql.unsafe(`create database ${name}`));

  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withServer(serverUrl, (sql) => sql.unsafe(`drop database if exists ${name} with (force)`)),
  };
}

async function withServer(serverUrl: string, work: (sql: postgres.Sql) => Promise<unknown>): Promise<void> {
  const sql = postgres(serverUrl, { max: 1, onnotice: () => undefined });
  try {
    await work(sql);
  } finally {
    await sql.end();
  }
}

/**
 * A fresh, migrated database for one test file: an in-memory PGlite, or, when
 * DATABASE_URL is set, a new database on that PostgreSQL server, dropped on close.
 */
export async function openTestDatabase(): Promise<Database & { url: string | undefined }> {
  const scratch = await createScratchDatabase();
  const database = await openDatabase({ databaseUrl: scratch?.url });
  await database.migrate();
  return {
    ...database,
    url: scratch?.url,
    close: async () => {
      await database.close();
      await scratch?.drop();
    },
  };
}
