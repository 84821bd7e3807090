import { and, asc, eq, gte, inArray } from "drizzle-orm";
import type { Executor } from "../db/database.js";
import { rotations, secrets, secretVersions } from "../db/schema.js";
import { type LineageRecord, streamLineage } from "../lineage/lineage-query.js";
import type { IncidentAction, IncidentQuery, IncidentReport, MatchedVersion } from "./incident-types.js";

/** Leases listed in one report at most; a larger window is reported as truncated. */
export const MAX_INCIDENT_LEASES = 10_000;

/** Facts an Article 23 notification needs that the broker cannot know. */
const OPERATOR_FIELDS = [
  "severity and impact of the incident",
  "whether it was caused by unlawful or malicious acts",
  "whether it could have a cross-border impact",
  "root cause, once known (final report within one month)",
];

/** Builds the incident report of `query` from the leases, versions and rotations in the database. */
export async function buildIncidentReport(db: Executor, query: IncidentQuery, now: Date): Promise<IncidentReport> {
  const to = query.to ?? now;
  const matchedVersions = query.fingerprint ? await versionsWithFingerprint(db, query.fingerprint) : [];
  const { credentials, truncated } = await liveLeases(db, query, now);
  const secretIds = unique(credentials.map((lease) => lease.secret_id).concat(matchedVersions.map((version) => version.secret_id)));
  // Without --from, steps count from the first exposure: earlier rotations mitigated nothing.
  const windowStart = query.from ?? firstIssuedAt(credentials);
  const rotationRows = await rotationsSince(db, secretIds, windowStart);
  const actions = actionsSince(credentials, rotationRows);
  const affected = affectedRecords(credentials, matchedVersions);

  return {
    generated_at: now.toISOString(),
    query: { fingerprint: query.fingerprint ?? null, service_account_id: query.serviceAccountId ?? null, from: query.from?.toISOString() ?? null, to: to.toISOString() },
    matched_versions: matchedVersions,
    credentials,
    truncated,
    affected,
    indicators: {
      fingerprints: unique(credentials.map((lease) => lease.version_fingerprint).concat(query.fingerprint ?? null)),
      source_addresses: unique(credentials.map((lease) => lease.source_address)),
      subjects: unique(credentials.map((lease) => (lease.subject ? `${lease.subject_issuer ?? ""} ${lease.subject}`.trim() : null))),
    },
    actions_since: actions,
    nis2_article_23: article23(credentials, affected, actions, query),
    ...containment(affected.secrets, rotationRows),
  };
}

function firstIssuedAt(credentials: LineageRecord[]): Date | undefined {
  const first = credentials.map((lease) => lease.issued_at).sort()[0];
  return first === undefined ? undefined : new Date(first);
}

async function versionsWithFingerprint(db: Executor, fingerprint: string): Promise<MatchedVersion[]> {
  const rows = await db
    .select({ secretId: secretVersions.secretId, name: secrets.name, version: secretVersions.version, stage: secretVersions.stage, createdAt: secretVersions.createdAt })
    .from(secretVersions)
    .innerJoin(secrets, eq(secrets.id, secretVersions.secretId))
    .where(eq(secretVersions.fingerprint, fingerprint))
    .orderBy(asc(secretVersions.createdAt));
  return rows.map((row) => ({ secret_id: row.secretId, secret_name: row.name, version: row.version, stage: row.stage, created_at: row.createdAt.toISOString() }));
}

/** Leases live in [from, to), of the fingerprint's versions or of the service account; without `to`, up to now included. */
async function liveLeases(db: Executor, query: IncidentQuery, now: Date): Promise<{ credentials: LineageRecord[]; truncated: boolean }> {
  const credentials: LineageRecord[] = [];
  const filter = { fingerprint: query.fingerprint, serviceAccountId: query.serviceAccountId, from: query.from, to: query.to };
  for await (const page of streamLineage(db, now, filter)) {
    credentials.push(...page);
    if (credentials.length > MAX_INCIDENT_LEASES) {
      return { credentials: credentials.slice(0, MAX_INCIDENT_LEASES), truncated: true };
    }
  }
  return { credentials, truncated: false };
}

async function rotationsSince(db: Executor, secretIds: string[], from: Date | undefined) {
  if (secretIds.length === 0) {
    return [];
  }
  const conditions = [inArray(rotations.secretId, secretIds)];
  if (from) conditions.push(gte(rotations.createdAt, from));
  return db.select().from(rotations).where(and(...conditions)).orderBy(asc(rotations.createdAt));
}

/** Rotations of the affected secrets and revocations of the listed leases, oldest first. */
function actionsSince(credentials: LineageRecord[], rotationRows: (typeof rotations.$inferSelect)[]): IncidentAction[] {
  const actions: IncidentAction[] = rotationRows.map((row) => ({
    at: row.createdAt.toISOString(),
    action: "rotation.start",
    target: row.secretId,
    actor: row.actor,
    detail: `${row.trigger} rotation ${row.id}: ${row.status}${row.toVersion ? `, version ${row.fromVersion ?? "none"} to ${row.toVersion}` : ""}`,
  }));
  for (const lease of credentials) {
    if (lease.revoked_at) {
      actions.push({ at: lease.revoked_at, action: "lease.revoke", target: lease.lease_id, actor: lease.revoked_by, detail: lease.revoke_reason ?? "no reason given" });
    }
  }
  return actions.sort((left, right) => left.at.localeCompare(right.at));
}

function affectedRecords(credentials: LineageRecord[], matched: MatchedVersion[]): IncidentReport["affected"] {
  const accounts = new Map<string, IncidentReport["affected"]["service_accounts"][number]>();
  const applications = new Map<string, IncidentReport["affected"]["applications"][number]>();
  const secretVersionsById = new Map<string, { name: string | null; versions: Set<string> }>();
  const addVersion = (id: string, name: string | null, version: string | null) => {
    const entry = secretVersionsById.get(id) ?? { name, versions: new Set<string>() };
    if (version !== null) entry.versions.add(version);
    secretVersionsById.set(id, entry);
  };

  for (const lease of credentials) {
    accounts.set(lease.service_account_id, { id: lease.service_account_id, name: lease.service_account_name, technical_owner: lease.technical_owner });
    applications.set(lease.application_id, { id: lease.application_id, name: lease.application_name, business_owner: lease.business_owner });
    if (lease.secret_id) addVersion(lease.secret_id, lease.secret_name, lease.secret_version);
  }
  for (const version of matched) {
    addVersion(version.secret_id, version.secret_name, version.version);
  }
  return {
    service_accounts: [...accounts.values()],
    applications: [...applications.values()],
    secrets: [...secretVersionsById].map(([id, entry]) => ({ id, name: entry.name, versions: [...entry.versions].sort() })),
  };
}

function article23(credentials: LineageRecord[], affected: IncidentReport["affected"], actions: IncidentAction[], query: IncidentQuery): IncidentReport["nis2_article_23"] {
  const ends = credentials.map((lease) => lease.ended_at ?? lease.expires_at).sort();
  return {
    affected_systems: affected.applications.map((application) => application.name ?? application.id),
    exposure_window: { first_issued_at: credentials[0]?.issued_at ?? null, last_live_at: ends[ends.length - 1] ?? null },
    credentials_live_now: credentials.filter((lease) => lease.ended_at === null).length,
    indicators_of_compromise: unique([
      ...(query.fingerprint ? [`value fingerprint ${query.fingerprint}`] : []),
      ...credentials.map((lease) => (lease.source_address ? `source address ${lease.source_address}` : null)),
      ...credentials.map((lease) => (lease.upstream_lease_id ? `upstream credential ${lease.upstream_lease_id}` : null)),
    ]),
    mitigations_taken: actions.map((action) => `${action.at} ${action.action === "rotation.start" ? "rotation of" : "revocation of"} ${action.target}: ${action.detail}`),
    to_be_completed_by_the_operator: OPERATOR_FIELDS,
  };
}

/**
 * Lists the affected secrets that no compromise rotation has moved away from an exposed
 * version yet, and the command that rotates each. A rotation that ended before the
 * exposed version existed, or that was rolled back, does not count.
 */
function containment(affectedSecrets: IncidentReport["affected"]["secrets"], rotationRows: (typeof rotations.$inferSelect)[]): Pick<IncidentReport, "secrets_to_rotate" | "next_steps"> {
  const contained = (secret: IncidentReport["affected"]["secrets"][number]) =>
    rotationRows.some(
      (row) => row.secretId === secret.id && row.trigger === "compromise" && row.status !== "rolled_back" && row.fromVersion !== null && secret.versions.includes(String(row.fromVersion)),
    );
  const toRotate = affectedSecrets.filter((secret) => !contained(secret)).map((secret) => ({ id: secret.id, name: secret.name }));
  return {
    secrets_to_rotate: toRotate,
    next_steps: toRotate.map((secret) => `secrets-broker rotate ${secret.name ?? secret.id} --compromise --reason "incident response" --wait`),
  };
}

function unique(values: (string | null | undefined)[]): string[] {
  return [...new Set(values.filter((value): value is string => typeof value === "string" && value !== ""))];
}
