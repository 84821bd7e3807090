import { and, asc, eq, gte, isNotNull, isNull, lt, or, type SQL } from "drizzle-orm";
import type { Executor } from "../db/database.js";
import { applications, grants, rotations, secrets, serviceAccounts } from "../db/schema.js";
import { listExceptions } from "../governance/exceptions/exceptions-service.js";
import type { Finding } from "../governance/findings/finding-types.js";
import { listReviews } from "../governance/reviews/reviews-service.js";
import { streamLineage } from "../lineage/lineage-query.js";

/** The time window of an evidence pack: activity in [from, to); the register as it is at export. */
export interface EvidenceWindow {
  from: Date | undefined;
  to: Date;
}

export type EvidenceRow = Record<string, unknown>;

/** The inputs of a table: the database, the window, the export time and the findings computed at it. */
export interface EvidenceContext {
  db: Executor;
  window: EvidenceWindow;
  now: Date;
  findings: Finding[];
}

/** One table of the pack, written as `<name>.csv` and `<name>.ndjson`. */
export interface EvidenceTable {
  name: string;
  columns: readonly string[];
  pages(context: EvidenceContext): AsyncIterable<EvidenceRow[]>;
}

const ACCOUNT_COLUMNS = [
  "id", "name", "application_id", "application_name", "technical_owner", "business_owner", "kind", "privileged", "status", "status_reason",
  "expires_at", "review_interval_days", "last_reviewed_at", "next_review_at", "max_token_ttl", "allowed_audiences", "allowed_scopes", "created_at",
] as const;

async function accountRows(db: Executor, condition: SQL | undefined): Promise<EvidenceRow[]> {
  const rows = await db
    .select({ account: serviceAccounts, applicationName: applications.name, businessOwner: applications.businessOwner })
    .from(serviceAccounts)
    .innerJoin(applications, eq(applications.id, serviceAccounts.applicationId))
    .where(condition)
    .orderBy(asc(serviceAccounts.id));
  return rows.map(({ account, applicationName, businessOwner }) => ({
    id: account.id,
    name: account.name,
    application_id: account.applicationId,
    application_name: applicationName,
    technical_owner: account.technicalOwner,
    business_owner: businessOwner,
    kind: account.kind,
    privileged: account.privileged,
    status: account.status,
    status_reason: account.statusReason,
    expires_at: account.expiresAt,
    review_interval_days: account.reviewIntervalDays,
    last_reviewed_at: account.lastReviewedAt,
    next_review_at: nextReview(account.lastReviewedAt ?? account.createdAt, account.reviewIntervalDays),
    max_token_ttl: account.maxTokenTtl,
    allowed_audiences: account.allowedAudiences,
    allowed_scopes: account.allowedScopes,
    created_at: account.createdAt,
    supplier: account.supplier,
  }));
}

function nextReview(since: Date, intervalDays: number): Date {
  return new Date(since.getTime() + intervalDays * 86_400_000);
}

async function* once(rows: Promise<EvidenceRow[]>): AsyncIterable<EvidenceRow[]> {
  yield await rows;
}

/** The service-account register, every account whatever its status. */
const serviceAccountTable: EvidenceTable = {
  name: "service-accounts",
  columns: ACCOUNT_COLUMNS,
  pages: ({ db }) => once(accountRows(db, undefined)),
};

/** Privileged accounts with their owners and review dates. */
const privilegedTable: EvidenceTable = {
  name: "privileged-accounts",
  columns: ["id", "name", "application_name", "technical_owner", "business_owner", "status", "max_token_ttl", "last_reviewed_at", "next_review_at", "expires_at"],
  pages: ({ db }) => once(accountRows(db, eq(serviceAccounts.privileged, true))),
};

/** Supplier accounts: who approved their access, under which contract, for which scopes and until when. */
const supplierTable: EvidenceTable = {
  name: "supplier-access",
  columns: ["id", "name", "supplier_name", "contract_ref", "approved_by", "approved_at", "allowed_scopes", "allowed_audiences", "status", "expires_at"],
  pages: ({ db }) =>
    once(
      accountRows(db, isNotNull(serviceAccounts.supplier)).then((rows) =>
        rows.map((row) => {
          const supplier = (row["supplier"] ?? {}) as Record<string, unknown>;
          return { ...row, supplier_name: supplier["name"], contract_ref: supplier["contract_ref"], approved_by: supplier["approved_by"], approved_at: supplier["approved_at"] };
        }),
      ),
    ),
};

/** Grants live at any moment of the window, revoked ones included. */
const grantTable: EvidenceTable = {
  name: "grants",
  columns: ["id", "service_account_id", "secret_id", "secret_name", "audience", "scopes", "max_ttl", "not_before", "not_after", "approved_by", "justification", "created_at", "created_by", "revoked_at", "revoked_by", "revoke_reason"],
  pages: ({ db, window }) =>
    once(
      db
        .select({ grant: grants, secretName: secrets.name })
        .from(grants)
        .leftJoin(secrets, eq(secrets.id, grants.secretId))
        .where(and(lt(grants.createdAt, window.to), window.from ? or(isNull(grants.revokedAt), gte(grants.revokedAt, window.from)) : undefined))
        .orderBy(asc(grants.id))
        .then((rows) =>
          rows.map(({ grant, secretName }) => ({
            id: grant.id,
            service_account_id: grant.serviceAccountId,
            secret_id: grant.secretId,
            secret_name: secretName,
            audience: grant.audience,
            scopes: grant.scopes,
            max_ttl: grant.maxTtl,
            not_before: grant.notBefore,
            not_after: grant.notAfter,
            approved_by: grant.approvedBy,
            justification: grant.justification,
            created_at: grant.createdAt,
            created_by: grant.createdBy,
            revoked_at: grant.revokedAt,
            revoked_by: grant.revokedBy,
            revoke_reason: grant.revokeReason,
          })),
        ),
    ),
};

/** Rotations started in the window. */
const rotationTable: EvidenceTable = {
  name: "rotations",
  columns: ["id", "secret_id", "secret_name", "trigger", "reason", "actor", "status", "from_version", "to_version", "failed_step", "created_at", "finished_at"],
  pages: ({ db, window }) =>
    once(
      db
        .select({ rotation: rotations, secretName: secrets.name })
        .from(rotations)
        .innerJoin(secrets, eq(secrets.id, rotations.secretId))
        .where(and(lt(rotations.createdAt, window.to), window.from ? gte(rotations.createdAt, window.from) : undefined))
        .orderBy(asc(rotations.createdAt), asc(rotations.id))
        .then((rows) =>
          rows.map(({ rotation, secretName }) => ({
            id: rotation.id,
            secret_id: rotation.secretId,
            secret_name: secretName,
            trigger: rotation.trigger,
            reason: rotation.reason,
            actor: rotation.actor,
            status: rotation.status,
            from_version: rotation.fromVersion,
            to_version: rotation.toVersion,
            failed_step: rotation.failedStep,
            created_at: rotation.createdAt,
            finished_at: rotation.finishedAt,
          })),
        ),
    ),
};

/** Credential lineage: every lease live in the window, streamed page by page. */
const lineageTable: EvidenceTable = {
  name: "lineage",
  columns: [
    "lease_id", "kind", "service_account_id", "service_account_name", "technical_owner", "application_id", "application_name", "grant_id", "secret_id", "secret_name",
    "secret_version", "version_fingerprint", "audience", "scopes", "issued_at", "renew_count", "expires_at", "ended_at", "end_reason", "revoked_by", "revoke_reason", "source_address",
  ],
  pages: ({ db, window, now }) => streamLineage(db, now, { from: window.from, to: window.to }) as AsyncIterable<EvidenceRow[]>,
};

/** Policy findings at export time, suppressed ones included with the exception that covers them. */
const findingTable: EvidenceTable = {
  name: "findings",
  columns: ["id", "rule", "severity", "subject_type", "subject_id", "records", "message", "controls", "suppressed", "exception_id"],
  pages: ({ findings }) =>
    once(
      Promise.resolve(
        findings.map((finding) => ({
          ...finding,
          subject_type: finding.subject.type,
          subject_id: finding.subject.id,
          records: finding.records.map((record) => `${record.type}:${record.id}`),
          controls: finding.controls.map((control) => `${control.framework} ${control.id}`),
        })),
      ),
    ),
};

/** The exceptions register, with each exception's status at export time. */
const exceptionTable: EvidenceTable = {
  name: "exceptions",
  columns: ["id", "control", "service_account_id", "secret_id", "reason", "compensating_controls", "accepted_by", "accepted_at", "expires_at", "status", "created_by", "revoked_at", "revoked_by"],
  pages: ({ db, now }) => once(listExceptions(db, now, {}) as unknown as Promise<EvidenceRow[]>),
};

/** Access reviews recorded in the window. */
const reviewTable: EvidenceTable = {
  name: "reviews",
  columns: ["id", "service_account_id", "decision", "reviewer", "reviewer_is_owner", "notes", "reviewed_at", "next_review_at", "recorded_by"],
  pages: ({ db, window }) =>
    once(listReviews(db, { from: window.from?.toISOString(), to: window.to.toISOString() }) as unknown as Promise<EvidenceRow[]>),
};

export const EVIDENCE_TABLES: readonly EvidenceTable[] = [
  serviceAccountTable,
  privilegedTable,
  supplierTable,
  grantTable,
  rotationTable,
  lineageTable,
  findingTable,
  exceptionTable,
  reviewTable,
];
