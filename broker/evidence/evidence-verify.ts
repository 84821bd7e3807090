import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from "jose";
import type { AuditEventView } from "../audit/audit-query.js";
import { checkLink } from "./audit-segment.js";
import { type EvidenceManifest, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_JWS_TYPE, SIGNATURE_FILE } from "./evidence-manifest.js";

export const AUDIT_CHAIN_FILE = "audit-chain.ndjson";
/** Algorithms a manifest signature may use: the broker's signing algorithms. */
const MANIFEST_ALGORITHMS = ["ES256", "EdDSA", "RS256"];
/** File names a manifest may list: one plain name inside the pack's directory. */
const PLAIN_FILE_NAME = /^[a-z0-9][a-z0-9.-]*$/;

/** The outcome of a pack check: every problem found, each naming its file. */
export interface PackVerification {
  valid: boolean;
  problems: string[];
  files: number;
  audit_events: number;
  signed_by: string | null;
}

/**
 * Checks an evidence pack in `dir`: the manifest's signature against `keys`, the SHA-256
 * of every listed file, that no file is missing or added, and that the audit segment
 * forms an unbroken chain matching the manifest's ends. It reports every problem rather
 * than stopping at the first.
 */
export async function verifyEvidencePack(dir: string, keys: JSONWebKeySet): Promise<PackVerification> {
  const problems: string[] = [];
  const signed = await checkSignature(dir, keys, problems);
  if (signed === undefined) {
    return { valid: false, problems, files: 0, audit_events: 0, signed_by: null };
  }
  const { manifest, kid } = signed;
  await checkFiles(dir, manifest, problems);
  const events = manifest.files.some((file) => file.path === AUDIT_CHAIN_FILE) ? await checkAuditSegment(dir, manifest, problems) : 0;
  return { valid: problems.length === 0, problems, files: manifest.files.length, audit_events: events, signed_by: kid };
}

async function checkSignature(dir: string, keys: JSONWebKeySet, problems: string[]): Promise<{ manifest: EvidenceManifest; kid: string | null } | undefined> {
  let manifestBytes: Buffer;
  let signature: string;
  try {
    manifestBytes = await readFile(path.join(dir, MANIFEST_FILE));
    signature = (await readFile(path.join(dir, SIGNATURE_FILE), "utf8")).trim();
  } catch (error) {
    problems.push(`${(error as NodeJS.ErrnoException).path ? path.basename((error as NodeJS.ErrnoException).path!) : MANIFEST_FILE}: missing; is ${dir} an evidence pack?`);
    return undefined;
  }
  let payload: Uint8Array;
  let kid: string | null = null;
  try {
    const verified = await compactVerify(signature, createLocalJWKSet(keys), { algorithms: MANIFEST_ALGORITHMS });
    if (verified.protectedHeader.typ !== MANIFEST_JWS_TYPE) {
      problems.push(`${SIGNATURE_FILE}: typ is ${String(verified.protectedHeader.typ)}, not ${MANIFEST_JWS_TYPE}`);
      return undefined;
    }
    payload = verified.payload;
    kid = verified.protectedHeader.kid ?? null;
  } catch (error) {
    problems.push(`${SIGNATURE_FILE}: the signature does not verify with the given keys (${(error as Error).message})`);
    return undefined;
  }
  if (!Buffer.from(payload).equals(manifestBytes)) {
    problems.push(`${MANIFEST_FILE}: differs from the manifest that ${SIGNATURE_FILE} signs`);
    return undefined;
  }
  const manifest = JSON.parse(manifestBytes.toString("utf8")) as EvidenceManifest;
  if (manifest.format !== MANIFEST_FORMAT || !Array.isArray(manifest.files)) {
    problems.push(`${MANIFEST_FILE}: not a ${MANIFEST_FORMAT} manifest`);
    return undefined;
  }
  return { manifest, kid };
}

async function checkFiles(dir: string, manifest: EvidenceManifest, problems: string[]): Promise<void> {
  const listed = new Set<string>([MANIFEST_FILE, SIGNATURE_FILE]);
  for (const file of manifest.files) {
    if (!PLAIN_FILE_NAME.test(file.path)) {
      problems.push(`${MANIFEST_FILE}: lists ${JSON.stringify(file.path)}, which is not a plain file name`);
      continue;
    }
    listed.add(file.path);
    const digest = await sha256OfFile(path.join(dir, file.path));
    if (digest === undefined) {
      problems.push(`${file.path}: missing`);
    } else if (digest !== file.sha256) {
      problems.push(`${file.path}: SHA-256 does not match the manifest: the file was changed`);
    }
  }
  for (const name of await readdir(dir)) {
    if (!listed.has(name)) {
      problems.push(`${name}: not listed in the manifest`);
    }
  }
}

async function checkAuditSegment(dir: string, manifest: EvidenceManifest, problems: string[]): Promise<number> {
  const lines = createInterface({ input: createReadStream(path.join(dir, AUDIT_CHAIN_FILE)), crlfDelay: Infinity });
  let previous: AuditEventView | undefined;
  let first: AuditEventView | undefined;
  let count = 0;
  for await (const line of lines) {
    if (line === "") continue;
    const event = JSON.parse(line) as AuditEventView;
    const problem = checkLink(event, previous);
    if (problem) problems.push(`${AUDIT_CHAIN_FILE}: ${problem}`);
    first ??= event;
    previous = event;
    count += 1;
  }
  const expected = manifest.audit_segment;
  if (count !== expected.events || (first?.seq ?? null) !== expected.first_seq || (previous?.seq ?? null) !== expected.last_seq) {
    problems.push(`${AUDIT_CHAIN_FILE}: holds events ${first?.seq ?? "none"} to ${previous?.seq ?? "none"}, not the manifest's ${expected.first_seq ?? "none"} to ${expected.last_seq ?? "none"}`);
  }
  if (first && first.prev_hash !== expected.first_prev_hash) {
    problems.push(`${AUDIT_CHAIN_FILE}: the first event does not link to the chain the manifest names`);
  }
  return count;
}

async function sha256OfFile(file: string): Promise<string | undefined> {
  const hash = createHash("sha256");
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch {
    return undefined;
  }
  return hash.digest("hex");
}
