import { readFileSync } from "node:fs";
import path from "node:path";
import { MIGRATIONS_DIR } from "./database.js";

/** Number of migrations shipped with this build, read from drizzle-kit's journal. */
export function shippedMigrationCount(): number {
  const journal = JSON.parse(readFileSync(path.join(MIGRATIONS_DIR, "meta", "_journal.json"), "utf8")) as {
    entries: unknown[];
  };
  return journal.entries.length;
}
