import { PGlite } from "@electric-sql/pglite";
import type { Sql } from "postgres";
import type { Db } from "./database.js";

/** Runs one SQL statement with positional parameters and returns its rows. */
export type RawStatement<Row> = (params: readonly RawParameter[]) => Promise<Row[]>;

/**
 * Parameter values of a raw statement: text, numbers, booleans, null and text arrays. Timestamps go
 * as ISO 8601 strings and JSON as its text, each with a cast in the SQL (`$1::timestamptz`,
 * `$2::jsonb`), because drizzle turns off the driver's own serializers for those types.
 */
export type RawParameter = string | number | boolean | null | readonly string[];

/**
 * Prepares a statement for the database's own driver, for the few hot paths where building
 * the query with drizzle costs more than the query itself. On PostgreSQL, postgres.js parses
 * it once per connection as a named statement; on PGlite it runs in process. The statement
 * runs outside any transaction, so it must be atomic on its own (one statement, possibly
 * with data-modifying CTEs).
 */
export function rawStatement<Row>(db: Db, text: string): RawStatement<Row> {
  const client = (db as unknown as { $client: unknown }).$client;
  if (client instanceof PGlite) {
    return async (params) => (await client.query<Row>(text, params as unknown[])).rows;
  }
  const sql = client as Sql;
  return async (params) => (await sql.unsafe(text, params as never[], { prepare: true })) as unknown as Row[];
}
