import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { writeEvidencePack } from "../../../broker/evidence/evidence-export.js";
import { openPostgresBenchDatabase } from "../bench-database.js";
import { benchDeps, initializeBenchBroker, newMasterKeys } from "../rotation/bench-runtime.js";
import { describeBrokerCode, formatLoad } from "../run-facts.js";
import { copyBaseline } from "./copy-baseline.js";
import { seedAuditEvents, seedLeases } from "./seed-rows.js";

const USAGE = `Usage: DATABASE_URL=postgres://... npm run bench:evidence -- [--rows N]

  --rows N   lease rows and audit events to seed, each (default 1000000)

Needs a PostgreSQL server; without DATABASE_URL it prints a note and exits 0.`;

/** Peak memory target of the export, in bytes. */
const PEAK_RSS_TARGET = 200 * 1024 * 1024;
const RSS_SAMPLE_MS = 50;
const MIB = 1024 * 1024;

/**
 * Evidence export benchmark: seeds N leases and N chained audit events in a scratch
 * PostgreSQL database, exports an evidence pack of the whole history as the broker does
 * (its files written by a worker thread of this process), and reports its time and the
 * process's peak RSS next to `COPY ... TO STDOUT` of the same two tables.
 */
async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      rows: { type: "string", default: "1000000" },
      "seed-into": { type: "string" },
      "copy-from": { type: "string" },
      "copy-into": { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const rows = Number(values.rows);
  if (!Number.isInteger(rows) || rows < 1) {
    console.error(`bench:evidence: --rows must be a positive integer\n\n${USAGE}`);
    return 2;
  }
  if (values["seed-into"]) {
    const start = new Date(Date.now() - 2 * rows);
    await seedLeases(values["seed-into"], rows, start);
    await seedAuditEvents(values["seed-into"], rows, start);
    return 0;
  }
  if (values["copy-from"] && values["copy-into"]) {
    console.log(JSON.stringify(await copyBaseline(values["copy-from"], values["copy-into"])));
    return 0;
  }
  const serverUrl = process.env["DATABASE_URL"];
  if (!serverUrl) {
    console.log("bench:evidence: skipped, because it needs a PostgreSQL server: set DATABASE_URL");
    return 0;
  }

  const database = await openPostgresBenchDatabase(serverUrl, 4);
  const dir = await mkdtemp(path.join(tmpdir(), "secrets-broker-evidence-bench-"));
  try {
    console.log(`Evidence export benchmark: ${rows} leases and ${rows} audit events, ${database.serverVersion.split(",")[0]}, Node.js ${process.version}, ${describeBrokerCode()}`);
    const deps = benchDeps(database.db, newMasterKeys());
    await initializeBenchBroker(deps);
    const seeded = performance.now();
    await seedInChild(database.url!, rows);
    console.error(`seeded in ${((performance.now() - seeded) / 1000).toFixed(0)} s`);

    const baseline = await copyInChild(database.url!, dir);
    console.error(`COPY baseline done in ${baseline.seconds.toFixed(1)} s; exporting the pack`);
    const packDir = await mkdtemp(path.join(dir, "pack-"));
    globalThis.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    let peakHeap = 0;
    const sampler = setInterval(() => {
      const usage = process.memoryUsage();
      peak = Math.max(peak, usage.rss);
      peakHeap = Math.max(peakHeap, usage.heapUsed);
    }, RSS_SAMPLE_MS);
    const started = performance.now();
    const manifest = await writeEvidencePack({ db: database.db, keyRing: deps.keyRing, issuer: deps.config.issuer, config: deps.config, databaseUrl: database.url }, packDir, { from: undefined, to: new Date() }, new Date());
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const packBytes = manifest.files.reduce((sum, file) => sum + file.bytes, 0);

    console.log("\n| side | seconds | MiB written | ratio to COPY |\n|---|---:|---:|---:|");
    console.log(`| baseline: COPY leases and audit_events TO STDOUT | ${baseline.seconds.toFixed(1)} | ${(baseline.bytes / MIB).toFixed(0)} | 1.00 |`);
    console.log(`| evidence pack (${manifest.files.length} files) | ${seconds.toFixed(1)} | ${(packBytes / MIB).toFixed(0)} | ${(seconds / baseline.seconds).toFixed(2)} |`);
    console.log(`\nRSS before the export ${(before / MIB).toFixed(0)} MiB, peak during it ${(peak / MIB).toFixed(0)} MiB (target under ${PEAK_RSS_TARGET / MIB} MiB: ${peak < PEAK_RSS_TARGET ? "met" : "NOT met"}); peak V8 heap in use of the main thread ${(peakHeap / MIB).toFixed(0)} MiB`);
    console.log(`audit segment: ${manifest.audit_segment.events} events; load average at end (1, 5, 15 min): ${formatLoad()}`);
    return 0;
  } finally {
    await rm(dir, { recursive: true, force: true });
    await database.close();
  }
}

/**
 * Seeds in a child process, so that the memory seeding takes is not counted in the
 * export's peak.
 */
async function seedInChild(url: string, rows: number): Promise<void> {
  await runChild(["--seed-into", url, "--rows", String(rows)]);
}

/**
 * Runs the COPY baseline in a child process, like seeding, because its buffers are not
 * the broker's. Run in this process, it left the RSS about 27 MiB higher before the
 * export started (100,000 rows of each kind).
 */
async function copyInChild(url: string, dir: string): Promise<{ seconds: number; bytes: number }> {
  return JSON.parse(await runChild(["--copy-from", url, "--copy-into", dir]));
}

/** Runs this script with `args` in a child process; returns its standard output. */
async function runChild(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += String(chunk)));
  const [code] = await once(child, "close");
  if (code !== 0) {
    throw new Error(`${args[0]} failed with exit code ${code}`);
  }
  return output;
}

process.exitCode = await main(process.argv.slice(2));
