import { csvCell, csvRecord } from "./csv-encoding.js";
import type { LineageRecord } from "./lineage-query.js";

export const LINEAGE_FORMATS = ["json", "ndjson", "csv"] as const;
export type LineageFormat = (typeof LINEAGE_FORMATS)[number];

export const LINEAGE_CONTENT_TYPES: Record<LineageFormat, string> = {
  json: "application/json; charset=utf-8",
  ndjson: "application/x-ndjson; charset=utf-8",
  csv: "text/csv; charset=utf-8; header=present",
};

/**
 * CSV columns in export order. The `satisfies` clause makes the compiler reject a
 * record field that has no column here, so the CSV cannot silently drop one.
 */
export const LINEAGE_COLUMNS = Object.keys({
  lease_id: true,
  kind: true,
  service_account_id: true,
  service_account_name: true,
  technical_owner: true,
  application_id: true,
  application_name: true,
  business_owner: true,
  grant_type: true,
  grant_id: true,
  secret_id: true,
  secret_name: true,
  secret_version: true,
  version_fingerprint: true,
  upstream_lease_id: true,
  upstream_revoke_state: true,
  audience: true,
  scopes: true,
  client_kid: true,
  subject_issuer: true,
  subject: true,
  issued_at: true,
  last_renewed_at: true,
  renew_count: true,
  expires_at: true,
  max_expires_at: true,
  ended_at: true,
  end_reason: true,
  revoked_at: true,
  revoked_by: true,
  revoke_reason: true,
  source_address: true,
  parent_lease_id: true,
} satisfies Record<keyof LineageRecord, true>) as (keyof LineageRecord)[];

/**
 * Serializes pages of lineage records, one output chunk per page: a JSON array, one
 * JSON object per line (NDJSON), or CSV with a header row. Empty exports are still
 * well formed: `[]`, nothing, or the header alone.
 */
export async function* formatLineage(format: LineageFormat, pages: AsyncIterable<LineageRecord[]>): AsyncGenerator<string> {
  if (format === "json") {
    yield* jsonArray(pages);
  } else if (format === "ndjson") {
    for await (const page of pages) {
      yield page.map((record) => `${JSON.stringify(record)}\n`).join("");
    }
  } else {
    yield csvRecord(LINEAGE_COLUMNS);
    for await (const page of pages) {
      yield page.map((record) => csvRecord(LINEAGE_COLUMNS.map((column) => csvCell(record[column])))).join("");
    }
  }
}

async function* jsonArray(pages: AsyncIterable<LineageRecord[]>): AsyncGenerator<string> {
  let written = 0;
  for await (const page of pages) {
    const items = page.map((record, index) => `${written + index === 0 ? "[\n" : ",\n"}${JSON.stringify(record)}`);
    written += page.length;
    yield items.join("");
  }
  yield written === 0 ? "[]\n" : "\n]\n";
}
