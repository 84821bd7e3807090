import { CompactSign } from "jose";
import type { ActiveSigningKey } from "../tokens/signing-key-ring.js";
import type { AuditSegment } from "./audit-segment.js";
import type { WrittenFile } from "./hashing-file.js";

export const MANIFEST_FILE = "manifest.json";
export const SIGNATURE_FILE = "manifest.jws";
export const MANIFEST_FORMAT = "secrets-broker-evidence/1";
/** JWS `typ` of a manifest signature, so that it cannot pass for a token (RFC 8725 section 3.11). */
export const MANIFEST_JWS_TYPE = "secrets-broker-evidence+jws";

/** The pack's table of contents: every file with its SHA-256, the window and the audit segment. */
export interface EvidenceManifest {
  format: typeof MANIFEST_FORMAT;
  issuer: string;
  generated_at: string;
  window: { from: string | null; to: string };
  audit_segment: AuditSegment;
  files: WrittenFile[];
}

/** Signs the manifest's exact bytes as a compact JWS with the broker's signing key. */
export async function signManifest(manifestBytes: Buffer, key: ActiveSigningKey): Promise<string> {
  return new CompactSign(manifestBytes).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: MANIFEST_JWS_TYPE }).sign(key.privateKey);
}
