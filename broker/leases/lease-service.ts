import { and, asc, eq, gt, gte, isNotNull, isNull, lt, lte, or, type SQL, sql } from "drizzle-orm";
import type { RecordAudit } from "../audit/audit-writer.js";
import type { Executor } from "../db/database.js";
import { leases, serviceAccounts } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { InvalidState, NotFound } from "../errors.js";
import { signAccessToken } from "../tokens/access-token.js";
import type { ActiveSigningKey } from "../tokens/signing-key-ring.js";
import { type LeaseRow, type LeaseStatus, leaseStatus } from "./lease-types.js";

export interface LeaseFilter {
  serviceAccountId?: string | undefined;
  applicationId?: string | undefined;
  status?: LeaseStatus | undefined;
  issuedAfter?: Date | undefined;
  issuedBefore?: Date | undefined;
}

export async function findLease(db: Executor, id: string, forUpdate = false): Promise<LeaseRow> {
  const query = db.select().from(leases).where(eq(leases.id, id));
  const [lease] = forUpdate ? await query.for("update") : await query;
  if (!lease) {
    throw new NotFound("lease", id);
  }
  return lease;
}

export async function listLeases(db: Executor, now: Date, filter: LeaseFilter, cursor: string | undefined, limit: number): Promise<LeaseRow[]> {
  const conditions: (SQL | undefined)[] = [cursor ? gt(leases.id, cursor) : undefined];
  if (filter.serviceAccountId) conditions.push(eq(leases.serviceAccountId, filter.serviceAccountId));
  if (filter.applicationId) conditions.push(eq(leases.applicationId, filter.applicationId));
  if (filter.issuedAfter) conditions.push(gte(leases.issuedAt, filter.issuedAfter));
  if (filter.issuedBefore) conditions.push(lt(leases.issuedAt, filter.issuedBefore));
  if (filter.status) conditions.push(statusCondition(filter.status, now));
  return db.select().from(leases).where(and(...conditions)).orderBy(asc(leases.id)).limit(limit);
}

function statusCondition(status: LeaseStatus, now: Date): SQL | undefined {
  const at = sql`${now.toISOString()}::timestamptz`;
  if (status === "revoked") return isNotNull(leases.revokedAt);
  if (status === "expired") return and(isNull(leases.revokedAt), or(isNotNull(leases.expiredAt), lte(leases.expiresAt, at)));
  return and(isNull(leases.revokedAt), isNull(leases.expiredAt), gt(leases.expiresAt, at));
}

/** Result of a renewal, in the shape of Vault's `sys/leases/renew` response. */
export interface RenewResult {
  lease_id: string;
  lease_duration: number;
  renewable: boolean;
  expires_at: string;
  warnings: string[];
  access_token?: string;
}

/**
 * Extends a live lease by `increment` seconds from now (the account's token TTL by
 * default), capped by the account's max token TTL, the global cap and the lease's max
 * expiry, and returns the duration actually granted. An access-token lease gets a
 * new token for the extended time, signed with `signingKey`, and the previous token stops
 * being active. The caller reads `signingKey` from the key ring before it opens `tx`.
 */
export async function renewLease(
  deps: BrokerDeps,
  tx: Executor,
  record: RecordAudit,
  lease: LeaseRow,
  increment: number | undefined,
  signingKey: ActiveSigningKey,
): Promise<RenewResult> {
  const now = deps.clock.now();
  const status = leaseStatus(lease, now);
  if (status !== "active") {
    throw new InvalidState(`lease ${lease.id} is ${status} and cannot be renewed; obtain a new credential`);
  }
  const [account] = await tx.select().from(serviceAccounts).where(eq(serviceAccounts.id, lease.serviceAccountId));
  if (!account || account.status !== "active") {
    throw new InvalidState(`lease ${lease.id} belongs to service account ${lease.serviceAccountId}, which is ${account?.status ?? "gone"}`);
  }
  const remaining = Math.floor((lease.maxExpiresAt.getTime() - now.getTime()) / 1000);
  if (remaining < 1) {
    throw new InvalidState(`lease ${lease.id} is past its max TTL and cannot be renewed; obtain a new credential`);
  }

  const requested = increment ?? account.maxTokenTtl;
  const granted = Math.min(requested, account.maxTokenTtl, deps.config.tokenTtlCap, remaining);
  const warnings =
    granted < requested
      ? [`TTL of ${requested}s exceeded the effective max TTL; capped to ${granted}s (lease max expiry ${lease.maxExpiresAt.toISOString()})`]
      : [];
  const expiresAt = new Date(now.getTime() + granted * 1000);

  let accessToken: string | undefined;
  let tokenJti = lease.tokenJti;
  if (lease.kind === "access_token") {
    const signed = await signAccessToken(signingKey, {
      issuer: deps.config.issuer,
      serviceAccountId: lease.serviceAccountId,
      audience: lease.audience ?? deps.config.issuer,
      scopes: lease.scopes,
      leaseId: lease.id,
      issuedAt: now,
      expiresAt,
    });
    accessToken = signed.token;
    tokenJti = signed.jti;
  }

  await tx
    .update(leases)
    .set({ expiresAt, lastRenewedAt: now, renewCount: lease.renewCount + 1, tokenJti })
    .where(eq(leases.id, lease.id));
  record({
    action: "lease.renew",
    target: lease.id,
    details: { service_account_id: lease.serviceAccountId, requested, granted, capped: granted < requested, jti: tokenJti },
  });

  return {
    lease_id: lease.id,
    lease_duration: granted,
    renewable: expiresAt < lease.maxExpiresAt,
    expires_at: expiresAt.toISOString(),
    warnings,
    ...(accessToken ? { access_token: accessToken } : {}),
  };
}

/** Shortens the live leases of an account whose expiry moved earlier: a lease never outlives its account. */
export async function capLeasesAtAccountExpiry(tx: Executor, serviceAccountId: string, expiresAt: Date): Promise<void> {
  const at = sql`${expiresAt.toISOString()}::timestamptz`;
  await tx
    .update(leases)
    .set({ expiresAt: sql`least(${leases.expiresAt}, ${at})`, maxExpiresAt: sql`least(${leases.maxExpiresAt}, ${at})` })
    .where(and(eq(leases.serviceAccountId, serviceAccountId), isNull(leases.revokedAt), isNull(leases.expiredAt), gt(leases.maxExpiresAt, at)));
}
