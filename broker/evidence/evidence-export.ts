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

const AUDIT_COLUMNS = ["seq", "occurred_at", "actor", "action", "target", "outcome", "request_id", "source_address", "details", "prev_hash", "hash"];

export interface EvidenceDeps {
  db: Db;
  keyRing: SigningKeyRing;
  issuer: string;
  /** The thresholds of the policy findings. */
  config: FindingSettings;
}

/**
 * Writes an evidence pack into `dir`, which must exist and be empty. The pack contains the
 * register, grants, rotations and lineage as CSV and NDJSON, and the window's audit chain
 * segment with its authentication and authorization events. It also contains the controls
 * with their status, an OSCAL rendering, and a manifest of every file's SHA-256 signed by
 * the broker. Tables are streamed page by page, so memory stays flat for any window.
 */
export async function writeEvidencePack(deps: EvidenceDeps, dir: string, window: EvidenceWindow, now: Date): Promise<EvidenceManifest> {
  const files: WrittenFile[] = [];
  const findings = await computeFindings({ db: deps.db, config: deps.config }, now);
  const context = { db: deps.db, window, now, findings };
  let lineageRows = 0;
  for (const table of EVIDENCE_TABLES) {
    const counted = await writeTable(dir, table.name, table.columns, table.pages(context), files);
    if (table.name === "lineage") lineageRows = counted;
  }
  const audit = await writeAuditSegment(deps.db, dir, window, files);

  const generatedAt = now.toISOString();
  const meta = { generatedAt, issuer: deps.issuer, from: window.from?.toISOString() ?? null, to: window.to.toISOString() };
  const controls = await assessControls(deps.db, now, { lineageRows, authEvents: audit.authEvents, segment: audit.segment, segmentProblem: audit.problem, findings });
  files.push(await writeWhole(dir, "controls.json", `${JSON.stringify({ ...meta, controls }, null, 2)}\n`));
  files.push(await writeWhole(dir, "controls.md", controlsMarkdown(controls, meta)));
  files.push(await writeWhole(dir, "oscal-assessment-results.json", `${JSON.stringify(oscalAssessmentResults(controls, findings, meta), null, 2)}\n`));

  const manifest: EvidenceManifest = {
    format: MANIFEST_FORMAT,
    issuer: deps.issuer,
    generated_at: generatedAt,
    window: { from: meta.from, to: meta.to },
    audit_segment: audit.segment,
    files: files.sort((left, right) => left.path.localeCompare(right.path)),
  };
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, "utf8");
  await writeWhole(dir, MANIFEST_FILE, manifestBytes.toString("utf8"));
  await writeWhole(dir, SIGNATURE_FILE, `${await signManifest(manifestBytes, await deps.keyRing.activeKey())}\n`);
  return manifest;
}

/** Writes one table as CSV and NDJSON; returns the number of rows. */
async function writeTable(dir: string, name: string, columns: readonly string[], pages: AsyncIterable<EvidenceRow[]>, files: WrittenFile[]): Promise<number> {
  const csv = new HashingFile(`${name}.csv`, path.join(dir, `${name}.csv`));
  const ndjson = new HashingFile(`${name}.ndjson`, path.join(dir, `${name}.ndjson`));
  let rows = 0;
  try {
    await csv.write(csvRecord(columns));
    for await (const page of pages) {
      await csv.write(page.map((row) => csvRecord(columns.map((column) => csvCell(row[column])))).join(""));
      await ndjson.write(page.map((row) => `${JSON.stringify(row)}\n`).join(""));
      rows += page.length;
    }
  } finally {
    files.push(await csv.close(), await ndjson.close());
  }
  return rows;
}

/**
 * Writes the window's audit events as `audit-chain.ndjson` (every event, to check the
 * chain) and its authentication and authorization events as `auth-events.csv` and
 * `.ndjson`, checking each link as it goes.
 */
async function writeAuditSegment(db: Db, dir: string, window: EvidenceWindow, files: WrittenFile[]) {
  const chain = new HashingFile("audit-chain.ndjson", path.join(dir, "audit-chain.ndjson"));
  const authCsv = new HashingFile("auth-events.csv", path.join(dir, "auth-events.csv"));
  const authNdjson = new HashingFile("auth-events.ndjson", path.join(dir, "auth-events.ndjson"));
  let segment: AuditSegment = EMPTY_SEGMENT;
  let problem: string | undefined;
  let authEvents = 0;
  try {
    await authCsv.write(csvRecord(AUDIT_COLUMNS));
    const range = await segmentRange(db, window);
    let previous: AuditEventView | undefined;
    for await (const event of range ? streamAuditEvents(db, { afterSeq: range.first - 1, limit: range.last - range.first + 1 }) : []) {
      problem ??= checkLink(event, previous);
      if (previous === undefined) segment = { ...segment, first_seq: event.seq, first_prev_hash: event.prev_hash };
      segment = { ...segment, last_seq: event.seq, last_hash: event.hash, events: segment.events + 1 };
      await chain.write(`${JSON.stringify(event)}\n`);
      if (isAuthEvent(event)) {
        authEvents += 1;
        await authNdjson.write(`${JSON.stringify(event)}\n`);
        await authCsv.write(csvRecord(AUDIT_COLUMNS.map((column) => csvCell(event[column as keyof typeof event]))));
      }
      previous = event;
    }
  } finally {
    files.push(await chain.close(), await authCsv.close(), await authNdjson.close());
  }
  return { segment, problem, authEvents };
}

async function writeWhole(dir: string, name: string, content: string): Promise<WrittenFile> {
  const file = new HashingFile(name, path.join(dir, name));
  await file.write(content);
  return file.close();
}
