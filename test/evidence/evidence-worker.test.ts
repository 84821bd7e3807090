import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type PackRequest, writePackFiles } from "../../broker/evidence/evidence-export.js";
import type { WrittenFile } from "../../broker/evidence/hashing-file.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { seedEvidenceActivity } from "./evidence-fixtures.js";

/** The worker runs compiled code only, so the test loads the launcher from the build (`npx tsc -b`). */
const BUILT_LAUNCHER = new URL("../../dist/broker/evidence/pack-worker.js", import.meta.url).href;

type Launcher = typeof import("../../broker/evidence/pack-worker.js");

/** On PostgreSQL the broker writes a pack's files in a worker thread with its own connection; PGlite has no second connection. */
describe.skipIf(!process.env["DATABASE_URL"])("evidence pack files written by the export worker", () => {
  let broker: TestBroker;
  let launcher: Launcher;
  const dirs: string[] = [];

  async function request(): Promise<PackRequest> {
    const dir = await mkdtemp(path.join(tmpdir(), "sb-evidence-worker-"));
    dirs.push(dir);
    const { privilegedTokenTtlCap, unusedAccountDays, reviewGraceDays } = broker.deps.config;
    const now = broker.clock.now();
    return { dir, window: { from: undefined, to: now }, now, issuer: broker.deps.config.issuer, settings: { privilegedTokenTtlCap, unusedAccountDays, reviewGraceDays } };
  }

  /** The OSCAL document names its parts with random UUIDs, so two exports differ in those bytes only. */
  const OSCAL_FILE = "oscal-assessment-results.json";

  const byPath = (files: WrittenFile[]) => [...files].sort((left, right) => left.path.localeCompare(right.path));
  const withoutOscal = (files: WrittenFile[]) => byPath(files).filter((file) => file.path !== OSCAL_FILE);
  const oscalBytes = (files: WrittenFile[]) => files.find((file) => file.path === OSCAL_FILE)?.bytes;

  beforeAll(async () => {
    broker = await startTestBroker();
    launcher = (await import(BUILT_LAUNCHER)) as Launcher;
    await seedEvidenceActivity(broker);
    // Both exports must read the same chain: link every seeded event before either runs.
    await broker.deps.auditChain.flush();
  });

  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  afterAll(async () => {
    await broker?.close();
  });

  it("writes the files the broker's own thread writes", async () => {
    const inThread = await writePackFiles(broker.deps.db, await request());

    const inWorker = await launcher.writePackFilesInWorker(broker.database.url!, await request());

    expect(byPath(inWorker.files).map((file) => file.path)).toEqual(byPath(inThread.files).map((file) => file.path));
    expect(withoutOscal(inWorker.files)).toEqual(withoutOscal(inThread.files));
    expect(oscalBytes(inWorker.files)).toBe(oscalBytes(inThread.files));
    expect(inWorker.segment).toEqual(inThread.segment);
    expect(inWorker.segment.events).toBeGreaterThan(5);
    expect(inWorker.files.find((file) => file.path === "lineage.ndjson")?.bytes).toBeGreaterThan(0);
  });

  it("rejects with the worker's database error", async () => {
    const missing = new URL(broker.database.url!);
    missing.pathname = "/sbtest_no_such_database";

    const failure = await launcher.writePackFilesInWorker(missing.toString(), await request()).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).cause).toMatchObject({ code: "3D000", message: expect.stringContaining("sbtest_no_such_database") });
  });
});
