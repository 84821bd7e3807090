import { sql } from "drizzle-orm";
import type { GeneratePolicy } from "../../adapters/contract.js";
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/** Supplier block carried by accounts of kind `supplier`. */
export interface SupplierBlock {
  name: string;
  contract_ref: string;
  approved_by: string;
  approved_at: string;
  /** End of the supplier contract (RFC 3339); a supplier grant should not outlast it. */
  contract_ends_at?: string;
}

export const applications = pgTable("applications", {
  id: text("id").primaryKey(),
  name: text("name").notNull().unique(),
  technicalOwner: text("technical_owner").notNull(),
  businessOwner: text("business_owner"),
  criticality: text("criticality").notNull(),
  regulated: boolean("regulated").notNull().default(false),
  createdAt: timestamptz("created_at").notNull(),
  updatedAt: timestamptz("updated_at").notNull(),
});

export const serviceAccounts = pgTable(
  "service_accounts",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull().unique(),
    applicationId: text("application_id")
      .notNull()
      .references(() => applications.id),
    technicalOwner: text("technical_owner").notNull(),
    kind: text("kind").notNull(),
    privileged: boolean("privileged").notNull().default(false),
    status: text("status").notNull(),
    statusReason: text("status_reason"),
    expiresAt: timestamptz("expires_at").notNull(),
    reviewIntervalDays: integer("review_interval_days").notNull(),
    lastReviewedAt: timestamptz("last_reviewed_at"),
    maxTokenTtl: integer("max_token_ttl").notNull(),
    allowedAudiences: text("allowed_audiences").array().notNull(),
    allowedScopes: text("allowed_scopes").array().notNull(),
    supplier: jsonb("supplier").$type<SupplierBlock>(),
    createdAt: timestamptz("created_at").notNull(),
    updatedAt: timestamptz("updated_at").notNull(),
    /**
     * Raised by one on every update of the row, by a trigger (migration 0009). The token
     * endpoint's issuance statement compares it with the revision it checked the request
     * against (broker/tokens/account-snapshot.ts).
     */
    revision: bigint("revision", { mode: "number" }).notNull().default(1),
  },
  (table) => [
    index("service_accounts_application_idx").on(table.applicationId),
    index("service_accounts_expires_idx").on(table.expiresAt),
    check("service_accounts_status_check", sql`${table.status} in ('active', 'suspended', 'decommissioned')`),
    check("service_accounts_kind_check", sql`${table.kind} in ('workload', 'ci', 'automation', 'supplier')`),
  ],
);

export const workloadKeys = pgTable(
  "workload_keys",
  {
    id: text("id").primaryKey(),
    serviceAccountId: text("service_account_id")
      .notNull()
      .references(() => serviceAccounts.id),
    kid: text("kid").notNull(),
    alg: text("alg").notNull(),
    jwk: jsonb("jwk").$type<Record<string, unknown>>().notNull(),
    createdAt: timestamptz("created_at").notNull(),
  },
  (table) => [uniqueIndex("workload_keys_account_kid_idx").on(table.serviceAccountId, table.kid)],
);

export const trustedIssuers = pgTable("trusted_issuers", {
  id: text("id").primaryKey(),
  issuer: text("issuer").notNull().unique(),
  jwks: jsonb("jwks").$type<{ keys: Record<string, unknown>[] }>(),
  jwksUri: text("jwks_uri"),
  audiences: text("audiences").array().notNull(),
  createdAt: timestamptz("created_at").notNull(),
  updatedAt: timestamptz("updated_at").notNull(),
});

export const federatedSubjects = pgTable(
  "federated_subjects",
  {
    id: text("id").primaryKey(),
    serviceAccountId: text("service_account_id")
      .notNull()
      .references(() => serviceAccounts.id),
    issuerId: text("issuer_id")
      .notNull()
      .references(() => trustedIssuers.id),
    subject: text("subject").notNull(),
    claims: jsonb("claims").$type<Record<string, string>>().notNull(),
    createdAt: timestamptz("created_at").notNull(),
  },
  (table) => [
    uniqueIndex("federated_subjects_binding_idx").on(table.serviceAccountId, table.issuerId, table.subject),
  ],
);

export const operatorTokens = pgTable(
  "operator_tokens",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    role: text("role").notNull(),
    secretHash: text("secret_hash").notNull(),
    createdAt: timestamptz("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    expiresAt: timestamptz("expires_at"),
    revokedAt: timestamptz("revoked_at"),
    revokedBy: text("revoked_by"),
  },
  (table) => [check("operator_tokens_role_check", sql`${table.role} in ('admin', 'operator', 'auditor')`)],
);

export const signingKeys = pgTable("signing_keys", {
  kid: text("kid").primaryKey(),
  alg: text("alg").notNull(),
  publicJwk: jsonb("public_jwk").$type<Record<string, unknown>>().notNull(),
  privateKeyCiphertext: text("private_key_ciphertext").notNull(),
  status: text("status").notNull(),
  createdAt: timestamptz("created_at").notNull(),
  /** When the key starts signing; until then it is only published, so that JWKS caches pick it up first. */
  activatesAt: timestamptz("activates_at"),
  retiredAt: timestamptz("retired_at"),
});

/** Single-row facts about the broker installation, such as when it was initialised. */
export const brokerState = pgTable("broker_state", {
  key: text("key").primaryKey(),
  value: jsonb("value").notNull(),
  updatedAt: timestamptz("updated_at").notNull(),
});

/**
 * Audit events. A change inserts its event in its own transaction with `seq`, `prev_hash`
 * and `hash` unset. The chainer (broker/audit/audit-chainer.ts) links committed events
 * shortly after, in `id` order, and sets those three columns once. A trigger rejects
 * every other update and every delete.
 */
export const auditEvents = pgTable(
  "audit_events",
  {
    /** Insertion order; the chainer takes pending events in this order. */
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    /** Position in the chain, set by the chainer; null until then. */
    seq: bigint("seq", { mode: "number" }),
    occurredAt: timestamptz("occurred_at").notNull(),
    actor: text("actor").notNull(),
    action: text("action").notNull(),
    target: text("target"),
    outcome: text("outcome").notNull(),
    requestId: text("request_id"),
    sourceAddress: text("source_address"),
    details: jsonb("details").$type<Record<string, unknown>>().notNull(),
    prevHash: text("prev_hash"),
    hash: text("hash"),
  },
  (table) => [
    uniqueIndex("audit_events_seq_idx").on(table.seq),
    index("audit_events_pending_idx").on(table.id).where(sql`${table.seq} is null`),
    index("audit_events_occurred_idx").on(table.occurredAt),
    index("audit_events_actor_idx").on(table.actor),
    index("audit_events_action_idx").on(table.action),
    index("audit_events_target_idx").on(table.target),
  ],
);

/**
 * The last sequence number and hash of the audit chain. The chainer locks this row while
 * it links a batch of events, so chainers of several broker processes take turns, and
 * verification compares it with the last event so that events removed from the tail are
 * detected.
 */
export const auditChainHead = pgTable("audit_chain_head", {
  id: integer("id").primaryKey(),
  seq: bigint("seq", { mode: "number" }).notNull(),
  hash: text("hash").notNull(),
});

/**
 * Every credential the broker hands out. An access token's lease records who obtained
 * it, for which audience and scopes, how (grant type, key or federated subject) and
 * when it ended; revoking a lease revokes its children.
 */
export const leases = pgTable(
  "leases",
  {
    id: text("id").primaryKey(),
    kind: text("kind").notNull(),
    serviceAccountId: text("service_account_id")
      .notNull()
      .references(() => serviceAccounts.id),
    applicationId: text("application_id").notNull(),
    parentLeaseId: text("parent_lease_id"),
    audience: text("audience"),
    scopes: text("scopes").array().notNull(),
    tokenJti: text("token_jti"),
    signingKid: text("signing_kid"),
    grantType: text("grant_type").notNull(),
    clientKid: text("client_kid"),
    subjectIssuer: text("subject_issuer"),
    subject: text("subject"),
    issuedAt: timestamptz("issued_at").notNull(),
    expiresAt: timestamptz("expires_at").notNull(),
    maxExpiresAt: timestamptz("max_expires_at").notNull(),
    lastRenewedAt: timestamptz("last_renewed_at"),
    renewCount: integer("renew_count").notNull().default(0),
    revokedAt: timestamptz("revoked_at"),
    revokedBy: text("revoked_by"),
    revokeReason: text("revoke_reason"),
    expiredAt: timestamptz("expired_at"),
    sourceAddress: text("source_address"),
    requestId: text("request_id"),
    /** Credential leases: the secret, the version handed out, the grant that allowed it. */
    secretId: text("secret_id"),
    secretVersion: text("secret_version"),
    grantId: text("grant_id"),
    adapter: text("adapter"),
    /** The upstream's own lease or credential id (a PostgreSQL role name, a Vault lease id). */
    upstreamLeaseId: text("upstream_lease_id"),
    /** `pending` until the upstream credential is revoked (`done`); `failed` after a failed attempt, retried. */
    upstreamRevokeState: text("upstream_revoke_state"),
    upstreamRevokeAttempts: integer("upstream_revoke_attempts").notNull().default(0),
    upstreamRevokeNextAt: timestamptz("upstream_revoke_next_at"),
    upstreamRevokeError: text("upstream_revoke_error"),
  },
  (table) => [
    index("leases_account_idx").on(table.serviceAccountId),
    index("leases_application_idx").on(table.applicationId),
    index("leases_parent_idx").on(table.parentLeaseId),
    index("leases_issued_idx").on(table.issuedAt),
    uniqueIndex("leases_token_jti_idx").on(table.tokenJti),
    index("leases_secret_idx").on(table.secretId, table.secretVersion),
    index("leases_grant_idx").on(table.grantId),
    index("leases_upstream_revoke_idx")
      .on(table.upstreamRevokeNextAt)
      .where(sql`${table.upstreamRevokeState} in ('pending', 'failed')`),
    index("leases_live_expiry_idx")
      .on(table.expiresAt)
      .where(sql`${table.revokedAt} is null and ${table.expiredAt} is null`),
  ],
);

/**
 * Client-assertion ids already used, per issuer, kept until the assertion expires:
 * the primary key makes a replay fail on every replica sharing the database.
 */
export const usedAssertions = pgTable(
  "used_assertions",
  {
    issuer: text("issuer").notNull(),
    jti: text("jti").notNull(),
    expiresAt: timestamptz("expires_at").notNull(),
  },
  (table) => [primaryKey({ columns: [table.issuer, table.jti] }), index("used_assertions_expiry_idx").on(table.expiresAt)],
);

/**
 * Data keys of the local adapter and the fingerprint key, each wrapped (AES-256-GCM)
 * by a master key. `master_key_id` names the master key that wrapped it, so that a
 * master-key rotation can re-wrap every row and report what is left.
 */
export const dataKeys = pgTable(
  "data_keys",
  {
    id: text("id").primaryKey(),
    purpose: text("purpose").notNull(),
    wrappedKey: text("wrapped_key").notNull(),
    masterKeyId: text("master_key_id").notNull(),
    status: text("status").notNull(),
    createdAt: timestamptz("created_at").notNull(),
    rewrappedAt: timestamptz("rewrapped_at"),
  },
  (table) => [
    uniqueIndex("data_keys_active_purpose_idx").on(table.purpose).where(sql`${table.status} = 'active'`),
    check("data_keys_purpose_check", sql`${table.purpose} in ('value', 'fingerprint')`),
    check("data_keys_status_check", sql`${table.status} in ('active', 'retired')`),
  ],
);

/** Rotation policy of a secret; stored now, run by the rotation engine. */
export interface RotationPolicy {
  schedule?: string;
  time_zone?: string;
  max_age?: number;
  window?: number;
  old_leases?: "grace" | "revoke";
}

/**
 * Rotation of a secret by its upstream (an AWS rotation Lambda), recorded so that the
 * broker's scheduler leaves the secret alone and operators see the upstream schedule.
 */
export interface ExternalRotation {
  /** The rotator of the secret, such as an AWS Lambda function ARN. */
  rotator: string;
  schedule: string | null;
  window: string | null;
  /** When the broker last read the upstream configuration, RFC 3339. */
  checked_at: string;
}

/** Upstream secrets the broker hands out through an adapter. Values live in versions, sealed, or upstream. */
export const secrets = pgTable(
  "secrets",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    adapter: text("adapter").notNull(),
    kind: text("kind").notNull(),
    owner: text("owner").notNull(),
    description: text("description"),
    settings: jsonb("settings").$type<Record<string, unknown>>().notNull(),
    generate: jsonb("generate").$type<GeneratePolicy>(),
    rotation: jsonb("rotation").$type<RotationPolicy>(),
    defaultTtl: integer("default_ttl").notNull(),
    maxTtl: integer("max_ttl").notNull(),
    currentVersion: text("current_version"),
    /** When the scheduler next starts a rotation; null without a rotation policy or while one runs. */
    nextRotationAt: timestamptz("next_rotation_at"),
    lastRotatedAt: timestamptz("last_rotated_at"),
    /** Set while the upstream rotates the secret itself; the broker's scheduler then never rotates it. */
    externalRotation: jsonb("external_rotation").$type<ExternalRotation>(),
    createdAt: timestamptz("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    updatedAt: timestamptz("updated_at").notNull(),
    deletedAt: timestamptz("deleted_at"),
    deletedBy: text("deleted_by"),
  },
  (table) => [
    uniqueIndex("secrets_live_name_idx").on(table.name).where(sql`${table.deletedAt} is null`),
    index("secrets_next_rotation_idx").on(table.nextRotationAt).where(sql`${table.deletedAt} is null and ${table.nextRotationAt} is not null`),
    check("secrets_kind_check", sql`${table.kind} in ('static', 'dynamic')`),
  ],
);

/**
 * Versions of a secret. `version` is the upstream's version id (a counter for the local
 * adapter and Vault KV, a VersionId for AWS). `sealed_value` contains what the adapter asked
 * the broker to keep (the local adapter's ciphertext); the fingerprint is HMAC-SHA256
 * under the broker's fingerprint key, never a plain hash of the value.
 */
export const secretVersions = pgTable(
  "secret_versions",
  {
    secretId: text("secret_id")
      .notNull()
      .references(() => secrets.id),
    version: text("version").notNull(),
    stage: text("stage").notNull(),
    fingerprint: text("fingerprint"),
    sealedValue: text("sealed_value"),
    rotationId: text("rotation_id"),
    createdAt: timestamptz("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    promotedAt: timestamptz("promoted_at"),
    retiredAt: timestamptz("retired_at"),
  },
  (table) => [
    primaryKey({ columns: [table.secretId, table.version] }),
    index("secret_versions_fingerprint_idx").on(table.fingerprint),
    check("secret_versions_stage_check", sql`${table.stage} in ('pending', 'current', 'previous', 'deprecated')`),
  ],
);

/** Permission for a service account to obtain a secret or an access token for an audience, with its approver and validity window. */
export const grants = pgTable(
  "grants",
  {
    id: text("id").primaryKey(),
    serviceAccountId: text("service_account_id")
      .notNull()
      .references(() => serviceAccounts.id),
    secretId: text("secret_id").references(() => secrets.id),
    audience: text("audience"),
    scopes: text("scopes").array().notNull(),
    maxTtl: integer("max_ttl"),
    notBefore: timestamptz("not_before"),
    notAfter: timestamptz("not_after"),
    approvedBy: text("approved_by"),
    justification: text("justification"),
    createdAt: timestamptz("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    updatedAt: timestamptz("updated_at").notNull(),
    revokedAt: timestamptz("revoked_at"),
    revokedBy: text("revoked_by"),
    revokeReason: text("revoke_reason"),
  },
  (table) => [
    index("grants_account_idx").on(table.serviceAccountId),
    index("grants_secret_idx").on(table.secretId),
    check("grants_target_check", sql`(${table.secretId} is null) <> (${table.audience} is null)`),
  ],
);

/** One step of a rotation as recorded: when it ran and how it ended. */
export interface RotationStepRecord {
  step: string;
  started_at: string;
  finished_at: string;
  outcome: "success" | "failure";
  error?: string;
}

/**
 * One attempt to rotate a secret. At most one per secret is in progress (partial unique
 * index). The process that runs it has a claim until `claim_expires_at`; a claim that
 * lapses (the process died) lets another process resume it from `last_step`.
 */
export const rotations = pgTable(
  "rotations",
  {
    id: text("id").primaryKey(),
    secretId: text("secret_id")
      .notNull()
      .references(() => secrets.id),
    trigger: text("trigger").notNull(),
    reason: text("reason"),
    actor: text("actor").notNull(),
    status: text("status").notNull(),
    lastStep: text("last_step"),
    steps: jsonb("steps").$type<RotationStepRecord[]>().notNull(),
    fromVersion: text("from_version"),
    toVersion: text("to_version"),
    failedStep: text("failed_step"),
    error: text("error"),
    attempts: integer("attempts").notNull().default(0),
    claimedBy: text("claimed_by"),
    claimExpiresAt: timestamptz("claim_expires_at"),
    createdAt: timestamptz("created_at").notNull(),
    updatedAt: timestamptz("updated_at").notNull(),
    finishedAt: timestamptz("finished_at"),
  },
  (table) => [
    uniqueIndex("rotations_one_in_progress_idx").on(table.secretId).where(sql`${table.status} = 'in_progress'`),
    index("rotations_secret_idx").on(table.secretId, table.createdAt),
    index("rotations_runnable_idx").on(table.claimExpiresAt).where(sql`${table.status} = 'in_progress'`),
    check("rotations_trigger_check", sql`${table.trigger} in ('schedule', 'manual', 'compromise')`),
    check("rotations_status_check", sql`${table.status} in ('in_progress', 'completed', 'rolled_back')`),
  ],
);

/**
 * Access-review attestations: an owner or a delegate decides to keep, change or revoke a
 * service account's access. `next_review_at` is the due date that the review set, kept so
 * that the history shows what was promised at the time.
 */
export const accessReviews = pgTable(
  "access_reviews",
  {
    id: text("id").primaryKey(),
    serviceAccountId: text("service_account_id")
      .notNull()
      .references(() => serviceAccounts.id),
    decision: text("decision").notNull(),
    reviewer: text("reviewer").notNull(),
    /** Whether the reviewer was the account's technical owner when the review was recorded, rather than a delegate. */
    reviewerIsOwner: boolean("reviewer_is_owner").notNull(),
    notes: text("notes"),
    reviewedAt: timestamptz("reviewed_at").notNull(),
    nextReviewAt: timestamptz("next_review_at").notNull(),
    recordedBy: text("recorded_by").notNull(),
  },
  (table) => [
    index("access_reviews_account_idx").on(table.serviceAccountId, table.reviewedAt),
    index("access_reviews_reviewed_idx").on(table.reviewedAt),
    check("access_reviews_decision_check", sql`${table.decision} in ('keep', 'change', 'revoke')`),
  ],
);

/**
 * Accepted deviations from a policy rule for one service account or one secret, with the
 * person who accepted the risk and a required end. A live exception suppresses the
 * matching finding; once expired or revoked it no longer does.
 */
export const policyExceptions = pgTable(
  "policy_exceptions",
  {
    id: text("id").primaryKey(),
    control: text("control").notNull(),
    serviceAccountId: text("service_account_id").references(() => serviceAccounts.id),
    secretId: text("secret_id").references(() => secrets.id),
    reason: text("reason").notNull(),
    compensatingControls: text("compensating_controls").notNull(),
    acceptedBy: text("accepted_by").notNull(),
    acceptedAt: timestamptz("accepted_at").notNull(),
    expiresAt: timestamptz("expires_at").notNull(),
    createdAt: timestamptz("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    revokedAt: timestamptz("revoked_at"),
    revokedBy: text("revoked_by"),
    revokeReason: text("revoke_reason"),
  },
  (table) => [
    index("policy_exceptions_account_idx").on(table.serviceAccountId),
    index("policy_exceptions_secret_idx").on(table.secretId),
    index("policy_exceptions_expires_idx").on(table.expiresAt),
    check("policy_exceptions_subject_check", sql`(${table.serviceAccountId} is null) <> (${table.secretId} is null)`),
  ],
);
