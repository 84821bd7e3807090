import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { type Database, openDatabase } from "../../broker/db/database.js";

/**
 * A fresh, migrated database for one test file: an in-memory PGlite, or, when
 * DATABASE_URL is set, a new database on that PostgreSQL server, dropped on close.
 */
export async function openTestDatabase(): Promise<Database & { url: string | undefined }> {
  const serverUrl = process.env["DATABASE_URL"];
  if (!serverUrl) {
    const database = await openDatabase({});
    await database.migrate();
    return { ...database, url: undefined };
  }

  const name = `sbtest_${randomBytes(6).toString("hex")}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => undefined });
  await admin.unsafe(`create database ${name}`);
  await admin.end();

  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const database = await openDatabase({ databaseUrl: url.toString() });
  await database.migrate();
  return {
    ...database,
    url: url.toString(),
    close: async () => {
      await database.close();
      const dropper = postgres(serverUrl, { max: 1, onnotice: () => undefined });
      await dropper.unsafe(`drop database if exists ${name} with (force)`);
      await dropper.end();
    },
  };
}
