import { and, asc, desc, eq, gt, isNull, like, lt, type SQL, sql } from "drizzle-orm";
import type { PendingVersion, SecretData, SecretKind } from "../../adapters/contract.js";
import type { RequestContext } from "../audit/audit-types.js";
import { auditedTransaction, type RecordAudit } from "../audit/audit-writer.js";
import type { Executor } from "../db/database.js";
import { newId } from "../db/ids.js";
import { escapeLike } from "../db/like-pattern.js";
import { grants, secretVersions, secrets } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { Conflict, NotFound, ValidationFailed } from "../errors.js";
import { auditDeps } from "../http/auth-middleware.js";
import { revokeLeases } from "../leases/lease-revocation.js";
import { nextRotationAt } from "../rotation/rotation-policy.js";
import { fingerprintOf, toSecretData } from "./fingerprint.js";
import { readUpstreamRotation, rotatedUpstreamReason, toExternalRotation } from "./external-rotation.js";
import { localSecretReader } from "./local-secret-reader.js";
import { ensureSameUpstream, ensureUpstreamFree, resolveUpstreamSettings } from "./upstream-settings.js";
import { ensureLocalSecretsExist } from "./local-secret-references.js";
import { DEFAULT_SECRET_TTL_SECONDS, type SecretCreateInput, type SecretFilterInput, type SecretUpdateInput, type SecretView } from "./secret-schemas.js";
import { type SecretRow, toSecretRef, toSecretView, type VersionRow } from "./secret-views.js";

export const LOCAL_ADAPTER = "local";
const POSTGRES_ADAPTER = "postgres";
const VAULT_ADAPTER = "vault";
const AWS_ADAPTER = "aws-secrets-manager";
/**
 * Adapters whose static secrets get their first version at creation. The local and
 * postgres adapters keep the value in the broker. The vault adapter records the version
 * Vault has, or writes `value` as a new one. The AWS adapter records the VersionId of
 * AWSCURRENT, and the value stays in AWS.
 */
const STORED_VALUE_ADAPTERS = new Set([LOCAL_ADAPTER, POSTGRES_ADAPTER, VAULT_ADAPTER, AWS_ADAPTER]);

/**
 * Creates a secret. A static secret of the local adapter, or any static secret given a
 * `value` or `generate` policy, gets its first version from the adapter now. That call
 * runs before the transaction opens, because adapters may reach other stores. The
 * secret, its version and the audit event then commit together.
 */
export async function createSecret(deps: BrokerDeps, context: RequestContext, input: SecretCreateInput): Promise<SecretView> {
  const settings = deps.adapters.parseSettings(input.adapter, input.kind, input.settings);
  checkInitialValue(input);
  await ensureSecretNameFree(deps.db, input.name);
  await ensureLocalSecretsExist(deps.db, settings);

  const now = deps.clock.now();
  const row: SecretRow = {
    id: newId("sec"),
    name: input.name,
    adapter: input.adapter,
    kind: input.kind,
    owner: input.owner,
    description: input.description ?? null,
    settings,
    generate: input.generate ?? null,
    rotation: input.rotation ?? null,
    defaultTtl: input.default_ttl ?? Math.min(DEFAULT_SECRET_TTL_SECONDS, input.max_ttl),
    maxTtl: input.max_ttl,
    currentVersion: null,
    nextRotationAt: null,
    lastRotatedAt: null,
    externalRotation: null,
    createdAt: now,
    createdBy: context.actor,
    updatedAt: now,
    deletedAt: null,
    deletedBy: null,
  };
  row.settings = await resolveUpstreamSettings(deps, row);
  await ensureUpstreamFree(deps, row.adapter, input.kind, row.settings);
  if (input.kind === "dynamic") {
    await verifyUpstream(deps, row);
  }

  const needsFirstVersion = input.kind === "static" && (STORED_VALUE_ADAPTERS.has(input.adapter) || input.value !== undefined || input.generate !== undefined);
  const first = needsFirstVersion ? await createFirstVersion(deps, row, input.value ? toSecretData(input.value) : undefined) : undefined;
  const fingerprint = first ? fingerprintOf(await deps.dataKeys.fingerprintKey(), first.data) : null;

  const externalRotation = toExternalRotation(await readUpstreamRotation(deps, row), now);
  if (externalRotation && input.rotation !== undefined) {
    throw new ValidationFailed([{ name: "rotation", reason: `${rotatedUpstreamReason(externalRotation)}; leave out rotation` }]);
  }
  const firstRotationAt = first && !externalRotation ? nextRotationAt(row.rotation, now, row.id) : null;

  return auditedTransaction(auditDeps(deps), context, async (tx, record) => {
    await ensureSecretNameFree(tx, input.name);
    await tx.insert(secrets).values({ ...row, currentVersion: first?.version ?? null, nextRotationAt: firstRotationAt, externalRotation });
    if (first) {
      await tx.insert(secretVersions).values({
        secretId: row.id,
        version: first.version,
        stage: "current",
        fingerprint,
        sealedValue: first.sealedValue,
        createdAt: now,
        createdBy: context.actor,
        promotedAt: now,
      });
    }
    record({
      action: "secret.create",
      target: row.id,
      details: {
        name: row.name,
        adapter: row.adapter,
        kind: row.kind,
        owner: row.owner,
        version: first?.version ?? null,
        fingerprint,
        ...(externalRotation ? { external_rotation: externalRotation.rotator } : {}),
      },
    });
    return toSecretView({ ...row, currentVersion: first?.version ?? null, nextRotationAt: firstRotationAt, externalRotation });
  });
}

function checkInitialValue(input: SecretCreateInput): void {
  if (input.rotation !== undefined && input.adapter === LOCAL_ADAPTER && input.generate === undefined) {
    throw new ValidationFailed([
      { name: "rotation", reason: 'a local secret rotates by generating a new value: set generate too, e.g. {"length": 32, "field": "<the field the value is in>"}' },
    ]);
  }
  if (input.default_ttl !== undefined && input.default_ttl > input.max_ttl) {
    throw new ValidationFailed([{ name: "default_ttl", reason: `must not exceed max_ttl (${input.max_ttl})` }]);
  }
  if (input.kind === "dynamic" && input.rotation !== undefined) {
    throw new ValidationFailed([{ name: "rotation", reason: "a dynamic secret does not rotate: each lease gets its own credential" }]);
  }
  if (input.value !== undefined && input.generate !== undefined) {
    throw new ValidationFailed([{ name: "value", reason: "give value or generate, not both" }]);
  }
  if (input.kind === "dynamic" && (input.value !== undefined || input.generate !== undefined)) {
    const name = input.value !== undefined ? "value" : "generate";
    throw new ValidationFailed([{ name, reason: "a dynamic secret has no stored value: its adapter creates a credential per lease" }]);
  }
  if (input.adapter === POSTGRES_ADAPTER && input.kind === "static" && input.value === undefined) {
    throw new ValidationFailed([
      { name: "value", reason: 'a static PostgreSQL secret starts from the role\'s current password: give value {"password": "..."}' },
    ]);
  }
  if (input.adapter === AWS_ADAPTER && input.value !== undefined) {
    throw new ValidationFailed([
      { name: "value", reason: "an AWS Secrets Manager secret takes its first version from AWSCURRENT; leave out value, and rotate the secret to store a new one" },
    ]);
  }
  if (input.adapter === LOCAL_ADAPTER && input.kind === "static" && input.value === undefined && input.generate === undefined) {
    throw new ValidationFailed([
      { name: "generate", reason: 'a local static secret needs its first value: give generate (e.g. {"length": 32}) or value' },
    ]);
  }
}

async function createFirstVersion(deps: BrokerDeps, row: SecretRow, value: SecretData | undefined): Promise<PendingVersion> {
  return deps.adapters.call(row.adapter, toSecretRef(row), "create_pending", localSecretReader(deps), (adapter, call) =>
    adapter.createPending(call, { rotationId: null, current: null, ...(value ? { value } : {}) }),
  );
}

/** Has the adapter check a new dynamic secret upstream, where it can; a static secret's first version does that. */
async function verifyUpstream(deps: BrokerDeps, row: SecretRow): Promise<void> {
  if (!deps.adapters.get(row.adapter).verifyUpstream) {
    return;
  }
  await deps.adapters.call(row.adapter, toSecretRef(row), "verify_upstream", localSecretReader(deps), (adapter, call) => adapter.verifyUpstream!(call));
}

async function ensureSecretNameFree(db: Executor, name: string): Promise<void> {
  const [existing] = await db
    .select({ id: secrets.id })
    .from(secrets)
    .where(and(eq(secrets.name, name), isNull(secrets.deletedAt)));
  if (existing) {
    throw new Conflict(`a secret named '${name}' already exists (${existing.id}); choose another name or delete it first`);
  }
}

export async function findSecret(db: Executor, id: string, forUpdate = false): Promise<SecretRow> {
  const query = db.select().from(secrets).where(eq(secrets.id, id));
  const [row] = forUpdate ? await query.for("update") : await query;
  if (!row) {
    throw new NotFound("secret", id);
  }
  return row;
}

/** Returns the live (not deleted) secret with this name, or undefined. */
export async function findLiveSecretByName(db: Executor, name: string): Promise<SecretRow | undefined> {
  const [row] = await db
    .select()
    .from(secrets)
    .where(and(eq(secrets.name, name), isNull(secrets.deletedAt)));
  return row;
}

export async function listSecrets(db: Executor, filter: SecretFilterInput, cursor: string | undefined, limit: number): Promise<SecretView[]> {
  const conditions: (SQL | undefined)[] = [cursor ? gt(secrets.id, cursor) : undefined];
  if (!filter.include_deleted) conditions.push(isNull(secrets.deletedAt));
  if (filter.adapter) conditions.push(eq(secrets.adapter, filter.adapter));
  if (filter.kind) conditions.push(eq(secrets.kind, filter.kind));
  if (filter.owner) conditions.push(eq(secrets.owner, filter.owner));
  if (filter.name_prefix) conditions.push(like(secrets.name, `${escapeLike(filter.name_prefix)}%`));
  if (filter.rotation_due_before) conditions.push(lt(secrets.nextRotationAt, new Date(filter.rotation_due_before)));
  const rows = await db.select().from(secrets).where(and(...conditions)).orderBy(asc(secrets.id)).limit(limit);
  return rows.map(toSecretView);
}

export async function listVersions(db: Executor, secretId: string): Promise<VersionRow[]> {
  return db.select().from(secretVersions).where(eq(secretVersions.secretId, secretId)).orderBy(desc(secretVersions.createdAt));
}

/** The current version of a secret, or undefined when it has none (dynamic secrets, upstream-only values). */
export async function currentVersion(db: Executor, secret: SecretRow): Promise<VersionRow | undefined> {
  if (!secret.currentVersion) {
    return undefined;
  }
  const [row] = await db
    .select()
    .from(secretVersions)
    .where(and(eq(secretVersions.secretId, secret.id), eq(secretVersions.version, secret.currentVersion)));
  return row;
}

export async function updateSecret(
  deps: BrokerDeps,
  tx: Executor,
  record: RecordAudit,
  id: string,
  input: SecretUpdateInput,
): Promise<SecretView> {
  const current = await findSecret(tx, id, true);
  ensureNotDeleted(current);
  const settings = input.settings === undefined ? undefined : deps.adapters.parseSettings(current.adapter, current.kind as SecretKind, input.settings);
  if (settings !== undefined) {
    ensureSameUpstream(deps, current, settings);
    await ensureUpstreamFree(deps, current.adapter, current.kind as SecretKind, settings, { db: tx, exceptId: current.id });
    await ensureLocalSecretsExist(tx, settings);
  }
  const defaultTtl = input.default_ttl ?? current.defaultTtl;
  const maxTtl = input.max_ttl ?? current.maxTtl;
  if (defaultTtl > maxTtl) {
    throw new ValidationFailed([{ name: "default_ttl", reason: `must not exceed max_ttl (${maxTtl})` }]);
  }
  if (input.rotation && current.externalRotation) {
    throw new ValidationFailed([{ name: "rotation", reason: rotatedUpstreamReason(current.externalRotation) }]);
  }
  if (input.rotation && current.kind === "dynamic") {
    throw new ValidationFailed([{ name: "rotation", reason: "a dynamic secret does not rotate: each lease gets its own credential" }]);
  }
  const generate = input.generate === undefined ? current.generate : input.generate;
  if (input.rotation && current.adapter === LOCAL_ADAPTER && !generate) {
    throw new ValidationFailed([
      { name: "rotation", reason: 'a local secret rotates by generating a new value: set generate too, e.g. {"length": 32, "field": "<the field the value is in>"}' },
    ]);
  }
  const rotationChanged = input.rotation !== undefined;
  const since = current.lastRotatedAt ?? current.createdAt;
  const rescheduled = rotationChanged && current.currentVersion ? nextRotationAt(input.rotation ?? null, since, current.id) : undefined;

  const [row] = await tx
    .update(secrets)
    .set({
      owner: input.owner,
      description: input.description,
      settings,
      generate: input.generate,
      rotation: input.rotation,
      nextRotationAt: rescheduled === undefined ? undefined : rescheduled,
      defaultTtl: input.default_ttl,
      maxTtl: input.max_ttl,
      updatedAt: deps.clock.now(),
    })
    .where(eq(secrets.id, id))
    .returning();
  record({ action: "secret.update", target: id, details: { name: current.name, fields: Object.keys(input).sort() } });
  return toSecretView(row!);
}

/**
 * Deletes a secret: it stays in the catalogue for lineage, marked deleted; its grants
 * are revoked and its live leases revoked, upstream credentials included.
 */
export async function deleteSecret(deps: BrokerDeps, tx: Executor, record: RecordAudit, id: string, actor: string, reason: string | undefined): Promise<SecretView> {
  const now = deps.clock.now();
  const current = await findSecret(tx, id, true);
  ensureNotDeleted(current);
  await ensureNotReferenced(tx, current);
  const why = `secret ${current.name} deleted: ${reason ?? "no reason given"}`;

  const [row] = await tx.update(secrets).set({ deletedAt: now, deletedBy: actor, updatedAt: now }).where(eq(secrets.id, id)).returning();
  const revokedGrants = await tx
    .update(grants)
    .set({ revokedAt: now, revokedBy: actor, revokeReason: why, updatedAt: now })
    .where(and(eq(grants.secretId, id), isNull(grants.revokedAt)))
    .returning({ id: grants.id });
  record({ action: "secret.delete", target: id, details: { name: current.name, reason: reason ?? null, grants_revoked: revokedGrants.map((grant) => grant.id) } });
  await revokeLeases(tx, now, record, { secretId: id }, actor, why);
  return toSecretView(row!);
}

/**
 * Refuses to delete a local secret that another live secret's settings name in a
 * `*_secret` field (such as a PostgreSQL admin password): that secret would stop
 * working, and its leases could no longer be revoked upstream.
 */
async function ensureNotReferenced(tx: Executor, secret: SecretRow): Promise<void> {
  if (secret.adapter !== LOCAL_ADAPTER) {
    return;
  }
  const users = await tx
    .select({ name: secrets.name })
    .from(secrets)
    .where(
      and(
        isNull(secrets.deletedAt),
        sql`jsonb_path_exists(${secrets.settings}, 'strict $.** ? (@.type() == "object").keyvalue() ? (@.key like_regex "_secret$" && @.value == $name)', jsonb_build_object('name', ${secret.name}::text))`,
      ),
    );
  if (users.length > 0) {
    throw new Conflict(`secret ${secret.name} is used by the settings of ${users.map((user) => user.name).join(", ")}; change or delete those first`);
  }
}

function ensureNotDeleted(row: SecretRow): void {
  if (row.deletedAt) {
    throw new NotFound("secret", row.id);
  }
}
