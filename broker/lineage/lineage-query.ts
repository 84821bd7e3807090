import { and, asc, eq, gte, lt, type SQL, sql } from "drizzle-orm";
import type { Executor } from "../db/database.js";
import { applications, leases, secrets, secretVersions, serviceAccounts } from "../db/schema.js";
import { type LeaseStatus, leaseStatus } from "../leases/lease-types.js";

/** Filter of a lineage export. Each field that is set narrows it further. */
export interface LineageFilter {
  serviceAccountId?: string | undefined;
  applicationId?: string | undefined;
  secretId?: string | undefined;
  /** Keyed fingerprint of a value: only leases that carried a version with that value. */
  fingerprint?: string | undefined;
  /** With `to`, a half-open window: leases live at any moment in [from, to). */
  from?: Date | undefined;
  to?: Date | undefined;
}

export type LeaseEndReason = "revoked" | "expired";

/** One lease as the lineage export shows it, with its account, application and owners. */
export interface LineageRecord {
  lease_id: string;
  kind: string;
  service_account_id: string;
  service_account_name: string;
  /** Technical owner of the service account. */
  technical_owner: string;
  application_id: string;
  application_name: string | null;
  /** Business owner of the application. */
  business_owner: string | null;
  grant_type: string;
  /** The grant a credential (or an access token for a granted audience) was issued under. */
  grant_id: string | null;
  secret_id: string | null;
  secret_name: string | null;
  /** The secret version the credential carried; null for access tokens and dynamic credentials. */
  secret_version: string | null;
  /** Keyed fingerprint of that version's value, never the value. */
  version_fingerprint: string | null;
  /** The upstream's id of a dynamic credential, such as a PostgreSQL role name. */
  upstream_lease_id: string | null;
  /** pending, done or failed: whether the upstream credential was revoked once the lease ended. */
  upstream_revoke_state: string | null;
  audience: string | null;
  scopes: string[];
  client_kid: string | null;
  subject_issuer: string | null;
  subject: string | null;
  issued_at: string;
  last_renewed_at: string | null;
  renew_count: number;
  expires_at: string;
  max_expires_at: string;
  ended_at: string | null;
  end_reason: LeaseEndReason | null;
  revoked_at: string | null;
  revoked_by: string | null;
  revoke_reason: string | null;
  source_address: string | null;
  parent_lease_id: string | null;
}

/** Rows fetched per query while streaming, so that memory stays flat for any export size. */
export const LINEAGE_PAGE_SIZE = 1000;

/**
 * Yields the matching leases page by page, ordered by issue time then id. Paging is
 * keyset on (issued_at, id), which never changes after issue, so a lease issued while
 * the export runs cannot shift or repeat earlier rows. Each page is read in its own
 * query, so a row shows its lease as it was when that page was read. `now` decides
 * whether a lease that was never revoked has expired yet.
 */
export async function* streamLineage(
  db: Executor,
  now: Date,
  filter: LineageFilter,
  pageSize: number = LINEAGE_PAGE_SIZE,
): AsyncGenerator<LineageRecord[]> {
  let cursor: LineageCursor | undefined;

  while (true) {
    const rows = await db
      .select({
        lease: leases,
        serviceAccountName: serviceAccounts.name,
        technicalOwner: serviceAccounts.technicalOwner,
        applicationName: applications.name,
        businessOwner: applications.businessOwner,
        secretName: secrets.name,
        versionFingerprint: secretVersions.fingerprint,
        cursorIssuedAt: ISSUED_AT_MICROSECONDS,
      })
      .from(leases)
      .innerJoin(serviceAccounts, eq(serviceAccounts.id, leases.serviceAccountId))
      .leftJoin(applications, eq(applications.id, leases.applicationId))
      .leftJoin(secrets, eq(secrets.id, leases.secretId))
      .leftJoin(secretVersions, and(eq(secretVersions.secretId, leases.secretId), eq(secretVersions.version, leases.secretVersion)))
      .where(and(...filterConditions(filter), ...afterCursor(cursor)))
      .orderBy(asc(leases.issuedAt), asc(leases.id))
      .limit(pageSize);

    if (rows.length > 0) {
      yield rows.map((row) => toLineageRecord(row, now));
    }
    if (rows.length < pageSize) {
      return;
    }
    const last = rows[rows.length - 1]!;
    cursor = { issuedAt: last.cursorIssuedAt, leaseId: last.lease.id };
  }
}

function filterConditions(filter: LineageFilter): SQL[] {
  const conditions: SQL[] = [];
  if (filter.serviceAccountId) conditions.push(eq(leases.serviceAccountId, filter.serviceAccountId));
  if (filter.applicationId) conditions.push(eq(leases.applicationId, filter.applicationId));
  if (filter.secretId) conditions.push(eq(leases.secretId, filter.secretId));
  if (filter.fingerprint) conditions.push(eq(secretVersions.fingerprint, filter.fingerprint));
  if (filter.to) conditions.push(lt(leases.issuedAt, filter.to));
  if (filter.from) {
    // A revoked lease ends when it is revoked, and any other lease at its expiry, past or future.
    conditions.push(sql`coalesce(${leases.revokedAt}, ${leases.expiresAt}) > ${filter.from.toISOString()}::timestamptz`);
  }
  return conditions;
}

/** Position after the last row sent: its issue time as exact UTC text, and its id. */
interface LineageCursor {
  issuedAt: string;
  leaseId: string;
}

/**
 * issued_at with all six fractional digits, independent of the session's DateStyle. A
 * JavaScript Date keeps only milliseconds, so a cursor built from one could repeat or
 * skip rows whose issue times differ in the microseconds.
 */
const ISSUED_AT_MICROSECONDS = sql<string>`to_char(${leases.issuedAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * Keyset condition for the page after `cursor`. The plain `>=` on issued_at lets the
 * planner use the issued_at index, and the row comparison then skips the rows already sent.
 * NOTE: only issued_at is indexed. PostgreSQL 15 walks that index with an incremental
 * sort, so a page filtered by account also reads past other accounts' leases. An index on
 * (service_account_id, issued_at, id) would start such a page at the cursor.
 */
function afterCursor(cursor: LineageCursor | undefined): SQL[] {
  if (cursor === undefined) {
    return [];
  }
  const issuedAt = sql`${cursor.issuedAt}::timestamptz`;
  return [gte(leases.issuedAt, issuedAt), sql`(${leases.issuedAt}, ${leases.id}) > (${issuedAt}, ${cursor.leaseId})`];
}

interface LineageRow {
  lease: typeof leases.$inferSelect;
  serviceAccountName: string;
  technicalOwner: string;
  applicationName: string | null;
  businessOwner: string | null;
  secretName: string | null;
  versionFingerprint: string | null;
  cursorIssuedAt: string;
}

function toLineageRecord(row: LineageRow, now: Date): LineageRecord {
  const { lease } = row;
  const status = leaseStatus(lease, now);
  return {
    lease_id: lease.id,
    kind: lease.kind,
    service_account_id: lease.serviceAccountId,
    service_account_name: row.serviceAccountName,
    technical_owner: row.technicalOwner,
    application_id: lease.applicationId,
    application_name: row.applicationName,
    business_owner: row.businessOwner,
    grant_type: lease.grantType,
    grant_id: lease.grantId,
    secret_id: lease.secretId,
    secret_name: row.secretName,
    secret_version: lease.secretVersion,
    version_fingerprint: row.versionFingerprint,
    upstream_lease_id: lease.upstreamLeaseId,
    upstream_revoke_state: lease.upstreamRevokeState,
    audience: lease.audience,
    scopes: lease.scopes,
    client_kid: lease.clientKid,
    subject_issuer: lease.subjectIssuer,
    subject: lease.subject,
    issued_at: lease.issuedAt.toISOString(),
    last_renewed_at: lease.lastRenewedAt?.toISOString() ?? null,
    renew_count: lease.renewCount,
    expires_at: lease.expiresAt.toISOString(),
    max_expires_at: lease.maxExpiresAt.toISOString(),
    ended_at: endTime(lease, status)?.toISOString() ?? null,
    end_reason: status === "active" ? null : status,
    revoked_at: lease.revokedAt?.toISOString() ?? null,
    revoked_by: lease.revokedBy,
    revoke_reason: lease.revokeReason,
    source_address: lease.sourceAddress,
    parent_lease_id: lease.parentLeaseId,
  };
}

/** When a lease ended: its revocation time, or its expiry once that has passed; null while live. */
function endTime(lease: LineageRow["lease"], status: LeaseStatus): Date | null {
  if (status === "revoked") {
    return lease.revokedAt;
  }
  if (status === "expired") {
    return lease.expiresAt;
  }
  return null;
}
