import { and, asc, eq, gt, isNotNull, isNull, lte, or, type SQL, sql } from "drizzle-orm";
import type { RecordAudit } from "../audit/audit-writer.js";
import type { Executor } from "../db/database.js";
import { newId } from "../db/ids.js";
import { grants, leases, secrets } from "../db/schema.js";
import { InvalidState, NotFound, ValidationFailed } from "../errors.js";
import { revokeLeases } from "../leases/lease-revocation.js";
import { findServiceAccount } from "../register/service-accounts-service.js";
import { findLiveSecretByName } from "../secrets/secrets-service.js";
import type { GrantCreateInput, GrantFilterInput, GrantStatus, GrantUpdateInput, GrantView } from "./grant-schemas.js";
import { type GrantRow, toGrantView } from "./grant-types.js";

const SUPPLIER_NEEDS_NOT_AFTER = "is required for a supplier account: a supplier's access ends with its contract";

export async function createGrant(tx: Executor, now: Date, record: RecordAudit, input: GrantCreateInput, actor: string): Promise<GrantView> {
  const account = await findServiceAccount(tx, input.service_account_id).catch(() => {
    throw new ValidationFailed([{ name: "service_account_id", reason: `service account ${input.service_account_id} does not exist` }]);
  });
  if (account.status === "decommissioned") {
    throw new InvalidState(`service account ${account.id} is decommissioned; it can receive no grants`);
  }
  if (account.kind === "supplier" && !input.not_after) {
    throw new ValidationFailed([{ name: "not_after", reason: SUPPLIER_NEEDS_NOT_AFTER }]);
  }
  if (input.secret !== undefined) {
    checkScopesAllowed(input.scopes, account.allowedScopes, account.id);
  }
  checkWindow(input.not_before, input.not_after, now);
  const secret = input.secret === undefined ? undefined : await findLiveSecretByName(tx, input.secret);
  if (input.secret !== undefined && !secret) {
    throw new ValidationFailed([{ name: "secret", reason: `no secret is named '${input.secret}'; create it with POST /v1/secrets first` }]);
  }

  const [row] = await tx
    .insert(grants)
    .values({
      id: newId("grt"),
      serviceAccountId: account.id,
      secretId: secret?.id ?? null,
      audience: input.audience ?? null,
      scopes: input.scopes,
      maxTtl: input.max_ttl ?? null,
      notBefore: input.not_before ? new Date(input.not_before) : null,
      notAfter: input.not_after ? new Date(input.not_after) : null,
      approvedBy: input.approved_by ?? null,
      justification: input.justification ?? null,
      createdAt: now,
      createdBy: actor,
      updatedAt: now,
    })
    .returning();
  record({ action: "grant.create", target: row!.id, details: grantDetails(row!) });
  return toGrantView(row!, secret?.name ?? null, now);
}

/**
 * A secret grant's scopes must be ones the account may put in its tokens: a scope
 * outside its allowed scopes could never be requested, so the grant would never be
 * usable. An audience grant's scopes instead set what a token for that audience carries.
 */
function checkScopesAllowed(scopes: string[], allowed: string[], accountId: string): void {
  const missing = scopes.filter((scope) => !allowed.includes(scope));
  if (missing.length > 0) {
    throw new ValidationFailed([
      {
        name: "scopes",
        reason: `${missing.join(" ")} ${missing.length === 1 ? "is" : "are"} not in the allowed_scopes of service account ${accountId}, so no token could carry ${missing.length === 1 ? "it" : "them"}; add ${missing.length === 1 ? "it" : "them"} with PATCH /v1/service-accounts/${accountId} first`,
      },
    ]);
  }
}

function checkWindow(notBefore: string | undefined, notAfter: string | undefined | null, now: Date): void {
  if (notAfter && new Date(notAfter) <= now) {
    throw new ValidationFailed([{ name: "not_after", reason: `must be in the future (now is ${now.toISOString()})` }]);
  }
  if (notBefore && notAfter && new Date(notBefore) >= new Date(notAfter)) {
    throw new ValidationFailed([{ name: "not_before", reason: "must be before not_after" }]);
  }
}

function grantDetails(row: GrantRow): Record<string, unknown> {
  return {
    service_account_id: row.serviceAccountId,
    secret_id: row.secretId,
    audience: row.audience,
    scopes: row.scopes,
    max_ttl: row.maxTtl,
    not_before: row.notBefore?.toISOString() ?? null,
    not_after: row.notAfter?.toISOString() ?? null,
    approved_by: row.approvedBy,
    justification: row.justification,
  };
}

export async function findGrant(db: Executor, id: string, forUpdate = false): Promise<GrantRow> {
  const query = db.select().from(grants).where(eq(grants.id, id));
  const [row] = forUpdate ? await query.for("update") : await query;
  if (!row) {
    throw new NotFound("grant", id);
  }
  return row;
}

export async function readGrant(db: Executor, id: string, now: Date): Promise<GrantView> {
  const grant = await findGrant(db, id);
  return toGrantView(grant, await secretName(db, grant.secretId), now);
}

async function secretName(db: Executor, secretId: string | null): Promise<string | null> {
  if (!secretId) {
    return null;
  }
  const [row] = await db.select({ name: secrets.name }).from(secrets).where(eq(secrets.id, secretId));
  return row?.name ?? null;
}

export async function listGrants(db: Executor, now: Date, filter: GrantFilterInput, cursor: string | undefined, limit: number): Promise<GrantView[]> {
  const conditions: (SQL | undefined)[] = [cursor ? gt(grants.id, cursor) : undefined];
  if (filter.service_account_id) conditions.push(eq(grants.serviceAccountId, filter.service_account_id));
  if (filter.secret_id) conditions.push(eq(grants.secretId, filter.secret_id));
  if (filter.audience) conditions.push(eq(grants.audience, filter.audience));
  if (filter.status) conditions.push(statusCondition(filter.status, now));
  const rows = await db
    .select({ grant: grants, secretName: secrets.name })
    .from(grants)
    .leftJoin(secrets, eq(secrets.id, grants.secretId))
    .where(and(...conditions))
    .orderBy(asc(grants.id))
    .limit(limit);
  return rows.map((row) => toGrantView(row.grant, row.secretName, now));
}

function statusCondition(status: GrantStatus, now: Date): SQL | undefined {
  const at = sql`${now.toISOString()}::timestamptz`;
  if (status === "revoked") return isNotNull(grants.revokedAt);
  if (status === "expired") return and(isNull(grants.revokedAt), lte(grants.notAfter, at));
  if (status === "not_yet_valid") return and(isNull(grants.revokedAt), or(isNull(grants.notAfter), gt(grants.notAfter, at)), gt(grants.notBefore, at));
  return and(isNull(grants.revokedAt), or(isNull(grants.notAfter), gt(grants.notAfter, at)), or(isNull(grants.notBefore), lte(grants.notBefore, at)));
}

/** Changes a grant. Moving `not_after` earlier shortens the grant's live leases to it. */
export async function updateGrant(tx: Executor, now: Date, record: RecordAudit, id: string, input: GrantUpdateInput): Promise<GrantView> {
  const current = await findGrant(tx, id, true);
  if (current.revokedAt) {
    throw new InvalidState(`grant ${id} is revoked and can no longer change; create a new grant`);
  }
  if (input.not_after === null) {
    const account = await findServiceAccount(tx, current.serviceAccountId);
    if (account.kind === "supplier") {
      throw new ValidationFailed([{ name: "not_after", reason: SUPPLIER_NEEDS_NOT_AFTER }]);
    }
  }
  if (input.not_after) {
    checkWindow(current.notBefore?.toISOString(), input.not_after, now);
  }
  if (input.scopes && current.secretId) {
    checkScopesAllowed(input.scopes, (await findServiceAccount(tx, current.serviceAccountId)).allowedScopes, current.serviceAccountId);
  }

  let notAfter: Date | null | undefined = undefined;
  if (input.not_after !== undefined) {
    notAfter = input.not_after === null ? null : new Date(input.not_after);
  }
  const [row] = await tx
    .update(grants)
    .set({
      scopes: input.scopes,
      maxTtl: input.max_ttl,
      notAfter,
      approvedBy: input.approved_by,
      justification: input.justification,
      updatedAt: now,
    })
    .where(eq(grants.id, id))
    .returning();
  record({ action: "grant.update", target: id, details: { fields: Object.keys(input).sort(), ...grantDetails(row!) } });
  if (row!.notAfter) {
    await capLeasesAtGrantEnd(tx, id, row!.notAfter);
  }
  return toGrantView(row!, await secretName(tx, row!.secretId), now);
}

async function capLeasesAtGrantEnd(tx: Executor, grantId: string, notAfter: Date): Promise<void> {
  const at = sql`${notAfter.toISOString()}::timestamptz`;
  await tx
    .update(leases)
    .set({ expiresAt: sql`least(${leases.expiresAt}, ${at})`, maxExpiresAt: sql`least(${leases.maxExpiresAt}, ${at})` })
    .where(and(eq(leases.grantId, grantId), isNull(leases.revokedAt), isNull(leases.expiredAt), gt(leases.maxExpiresAt, at)));
}

/** Revokes a grant and every live lease issued under it, upstream credentials included. */
export async function revokeGrant(tx: Executor, now: Date, record: RecordAudit, id: string, actor: string, reason: string | undefined): Promise<GrantView> {
  const current = await findGrant(tx, id, true);
  if (current.revokedAt) {
    throw new InvalidState(`grant ${id} was already revoked at ${current.revokedAt.toISOString()}`);
  }
  const [row] = await tx
    .update(grants)
    .set({ revokedAt: now, revokedBy: actor, revokeReason: reason ?? null, updatedAt: now })
    .where(eq(grants.id, id))
    .returning();
  record({ action: "grant.revoke", target: id, details: { service_account_id: row!.serviceAccountId, reason: reason ?? null } });
  await revokeLeases(tx, now, record, { grantId: id }, actor, `grant ${id} revoked: ${reason ?? "no reason given"}`);
  return toGrantView(row!, await secretName(tx, row!.secretId), now);
}
