import path from "node:path";
import { type AuditEventView, streamAuditEvents } from "../audit/audit-query.js";
import type { Db } from "../db/database.js";
import { computeFindings } from "../governance/findings/compute-findings.js";
import type { FindingSettings } from "../governance/findings/finding-types.js";
import { csvCell, csvRecord } from "../lineage/csv-encoding.js";
import type { SigningKeyRing } from "../tokens/signing-key-ring.js";
import { type AuditSegment, checkLink, EMPTY_SEGMENT, isAuthEvent, segmentRange } from "./audit-segment.js";
import { assessControls } from "./evidence-controls.js";
import { controlsMarkdown, oscalAssessmentResults } from "./evidence-documents.js";
import { type EvidenceManifest, MANIFEST_FILE, MANIFEST_FORMAT, signManifest, SIGNATURE_FILE } from "./evidence-manifest.js";
import { EVIDENCE_TABLES, type EvidenceRow, type EvidenceWindow } from "./evidence-tables.js";
import { HashingFile, type WrittenFile } from "./hashing-file.js";
import { writePackFilesInWorker } from "./pack-worker.js";

const AUDIT_COLUMNS = ["seq", "occurred_at", "actor", "action", "target", "outcome", "request_id", "source_address", "details", "prev_hash", "hash"];

export interface EvidenceDeps {
  db: Db;
  keyRing: SigningKeyRing;
  issuer: string;
  /** The thresholds of the policy findings. */
  config: FindingSettings;
  /**
   * The PostgreSQL server the broker runs on. When it is set, a worker thread writes the
   * files on a connection of its own (see pack-worker.ts). PGlite belongs to one thread,
   * so without it this thread writes them.
   */
  databaseUrl?: string | undefined;
}

/** Input for writing a pack's files: its directory, window, export time and issuer, and the findings' thresholds. */
export interface PackRequest {
  dir: string;
  window: EvidenceWindow;
  now: Date;
  issuer: string;
  settings: FindingSettings;
}

/** The files written, and the audit chain segment they include. */
export interface WrittenPack {
  files: WrittenFile[];
  segment: AuditSegment;
}

/**
 * Writes an evidence pack into `dir`, which must exist and be empty. The pack contains the
 * register, grants, rotations and lineage as CSV and NDJSON, and the window's audit chain
 * segment with its authentication and authorization events. It also contains the controls
 * with their status, an OSCAL rendering, and a manifest of every file's SHA-256 signed by
 * the broker. Tables are streamed page by page, so memory stays flat for any window.
 */
export async function writeEvidencePack(deps: EvidenceDeps, dir: string, window: EvidenceWindow, now: Date): Promise<EvidenceManifest> {
  // The request is copied to the worker, so it takes only the thresholds: `deps.config`
  // may be the whole broker configuration, master key included.
  const { privilegedTokenTtlCap, unusedAccountDays, reviewGraceDays } = deps.config;
  const request: PackRequest = { dir, window, now, issuer: deps.issuer, settings: { privilegedTokenTtlCap, unusedAccountDays, reviewGraceDays } };
  const written = deps.databaseUrl ? await writePackFilesInWorker(deps.databaseUrl, request) : await writePackFiles(deps.db, request);

  const manifest: EvidenceManifest = {
    format: MANIFEST_FORMAT,
    issuer: deps.issuer,
    generated_at: now.toISOString(),
    window: { from: window.from?.toISOString() ?? null, to: window.to.toISOString() },
    audit_segment: written.segment,
    files: written.files.sort((left, right) => left.path.localeCompare(right.path)),
  };
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, "utf8");
  await writeWhole(dir, MANIFEST_FILE, manifestBytes.toString("utf8"));
  await writeWhole(dir, SIGNATURE_FILE, `${await signManifest(manifestBytes, await deps.keyRing.activeKey())}\n`);
  return manifest;
}

/** Writes every file of the pack but the manifest and its signature. */
export async function writePackFiles(db: Db, request: PackRequest): Promise<WrittenPack> {
  const { dir, window, now } = request;
  const files: WrittenFile[] = [];
  const findings = await computeFindings({ db, config: request.settings }, now);
  const context = { db, window, now, findings };
  let lineageRows = 0;
  for (const table of EVIDENCE_TABLES) {
    const counted = await writeTable(dir, table.name, table.columns, table.pages(context), files);
    if (table.name === "lineage") lineageRows = counted;
  }
  const audit = await writeAuditSegment(db, dir, window, files);

  const meta = { generatedAt: now.toISOString(), issuer: request.issuer, from: window.from?.toISOString() ?? null, to: window.to.toISOString() };
  const controls = await assessControls(db, now, { lineageRows, authEvents: audit.authEvents, segment: audit.segment, segmentProblem: audit.problem, findings });
  files.push(await writeWhole(dir, "controls.json", `${JSON.stringify({ ...meta, controls }, null, 2)}\n`));
  files.push(await writeWhole(dir, "controls.md", controlsMarkdown(controls, meta)));
  files.push(await writeWhole(dir, "oscal-assessment-results.json", `${JSON.stringify(oscalAssessmentResults(controls, findings, meta), null, 2)}\n`));
  return { files, segment: audit.segment };
}

/** Writes one table as CSV and NDJSON; returns the number of rows. */
async function writeTable(dir: string, name: string, columns: readonly string[], pages: AsyncIterable<EvidenceRow[]>, files: WrittenFile[]): Promise<number> {
  const csv = new HashingFile(`${name}.csv`, path.join(dir, `${name}.csv`));
  const ndjson = new HashingFile(`${name}.ndjson`, path.join(dir, `${name}.ndjson`));
  let rows = 0;
  try {
    await csv.write(csvRecord(columns));
    for await (const page of pages) {
      rows += page.length;
      await writePage(page, columns, csv, ndjson);
    }
  } finally {
    files.push(await csv.close(), await ndjson.close());
  }
  return rows;
}

/**
 * Renders a page as CSV and NDJSON in one pass over its rows and queues both; the
 * promise settles once both files take more.
 */
function writePage(page: EvidenceRow[], columns: readonly string[], csv: HashingFile, ndjson: HashingFile): Promise<unknown> {
  let csvText = "";
  let ndjsonText = "";
  for (const row of page) {
    csvText += csvRecord(columns.map((column) => csvCell(row[column])));
    ndjsonText += `${JSON.stringify(row)}\n`;
  }
  return Promise.all([csv.write(csvText), ndjson.write(ndjsonText)]);
}

/** Characters of audit-chain NDJSON gathered before the audit files are written, so that an event is not a write of its own. */
const AUDIT_BATCH_CHARS = 256 * 1024;

/**
 * Writes the window's audit events as `audit-chain.ndjson` (every event, to check the
 * chain) and its authentication and authorization events as `auth-events.csv` and
 * `.ndjson`, checking each link as it goes.
 */
async function writeAuditSegment(db: Db, dir: string, window: EvidenceWindow, files: WrittenFile[]) {
  const chain = new HashingFile("audit-chain.ndjson", path.join(dir, "audit-chain.ndjson"));
  const authCsv = new HashingFile("auth-events.csv", path.join(dir, "auth-events.csv"));
  const authNdjson = new HashingFile("auth-events.ndjson", path.join(dir, "auth-events.ndjson"));
  const batch = { chain: "", authCsv: csvRecord(AUDIT_COLUMNS), authNdjson: "" };
  const writeBatch = async () => {
    await Promise.all([chain.write(batch.chain), authCsv.write(batch.authCsv), authNdjson.write(batch.authNdjson)]);
    batch.chain = batch.authCsv = batch.authNdjson = "";
  };
  let first: AuditEventView | undefined;
  let previous: AuditEventView | undefined;
  let problem: string | undefined;
  let events = 0;
  let authEvents = 0;
  try {
    const range = await segmentRange(db, window);
    for await (const event of range ? streamAuditEvents(db, { afterSeq: range.first - 1, limit: range.last - range.first + 1 }) : []) {
      problem ??= checkLink(event, previous);
      first ??= event;
      events += 1;
      const line = `${JSON.stringify(event)}\n`;
      batch.chain += line;
      if (isAuthEvent(event)) {
        authEvents += 1;
        batch.authNdjson += line;
        batch.authCsv += csvRecord(AUDIT_COLUMNS.map((column) => csvCell(event[column as keyof typeof event])));
      }
      previous = event;
      if (batch.chain.length >= AUDIT_BATCH_CHARS) await writeBatch();
    }
    await writeBatch();
  } finally {
    files.push(await chain.close(), await authCsv.close(), await authNdjson.close());
  }
  const segment: AuditSegment = first && previous
    ? { first_seq: first.seq, last_seq: previous.seq, first_prev_hash: first.prev_hash, last_hash: previous.hash, events }
    : EMPTY_SEGMENT;
  return { segment, problem, authEvents };
}

async function writeWhole(dir: string, name: string, content: string): Promise<WrittenFile> {
  const file = new HashingFile(name, path.join(dir, name));
  await file.write(content);
  return file.close();
}
