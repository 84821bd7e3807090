import { createWriteStream } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import postgres from "postgres";

/** Bytes and seconds of `COPY (select * from leases) TO STDOUT` and the same for audit_events, written to files in `dir`. */
export async function copyBaseline(url: string, dir: string): Promise<{ seconds: number; bytes: number }> {
  const started = performance.now();
  let bytes = 0;
  for (const table of ["leases", "audit_events"]) {
    bytes += await copyTable(url, table, path.join(dir, `${table}.copy`));
  }
  return { seconds: (performance.now() - started) / 1000, bytes };
}

/**
 * Copies one table to a file on a connection of its own. A second COPY on the same
 * postgres.js connection did not start in our runs, so each table gets a new one.
 */
async function copyTable(url: string, table: string, file: string): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const stream = await sql.unsafe(`copy (select * from ${table}) to stdout`).readable();
    let bytes = 0;
    stream.on("data", (chunk: Buffer) => (bytes += chunk.length));
    await pipeline(stream, createWriteStream(file));
    return bytes;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
