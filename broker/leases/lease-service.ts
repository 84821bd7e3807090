import { and, asc, eq, gt, gte, isNotNull, isNull, lt, lte, or, type SQL, sql } from "drizzle-orm";
import type { RecordAudit } from "../audit/audit-writer.js";
import type { Executor } from "../db/database.js";
import { grants, leases, secrets, serviceAccounts } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { InvalidState, NotFound } from "../errors.js";
import { grantStatus } from "../grants/grant-types.js";
import { signAccessToken } from "../tokens/access-token.js";
import type { ActiveSigningKey } from "../tokens/signing-key-ring.js";
import { checkTokenLeaseStillAllowed } from "./token-lease-scope.js";
import { ACCESS_TOKEN_LEASE, CREDENTIAL_LEASE, type LeaseRow, type LeaseViewStatus, leaseStatus } from "./lease-types.js";

export interface LeaseFilter {
  serviceAccountId?: string | undefined;
  applicationId?: string | undefined;
  secretId?: string | undefined;
  grantId?: string | undefined;
  status?: LeaseViewStatus | undefined;
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
  if (filter.secretId) conditions.push(eq(leases.secretId, filter.secretId));
  if (filter.grantId) conditions.push(eq(leases.grantId, filter.grantId));
  if (filter.issuedAfter) conditions.push(gte(leases.issuedAt, filter.issuedAfter));
  if (filter.issuedBefore) conditions.push(lt(leases.issuedAt, filter.issuedBefore));
  if (filter.status) conditions.push(statusCondition(filter.status, now));
  return db.select().from(leases).where(and(...conditions)).orderBy(asc(leases.id)).limit(limit);
}

function statusCondition(status: LeaseViewStatus, now: Date): SQL | undefined {
  const at = sql`${now.toISOString()}::timestamptz`;
  const revokeFailed = sql`${leases.upstreamRevokeState} = 'failed'`;
  const notRevokeFailed = sql`${leases.upstreamRevokeState} is distinct from 'failed'`;
  if (status === "revoke_failed") return revokeFailed;
  if (status === "revoked") return and(isNotNull(leases.revokedAt), notRevokeFailed);
  if (status === "expired") return and(isNull(leases.revokedAt), or(isNotNull(leases.expiredAt), lte(leases.expiresAt, at)), notRevokeFailed);
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
  /** Credential leases: the version the lease carries and the secret's current one, so that a client notices a rotation. */
  version?: string | null;
  current_version?: string | null;
}

/** Limits of a renewal: the increment used when the request gives none, and the TTL caps of the lease's kind. */
export interface RenewalBounds {
  defaultIncrement: number;
  /** Each TTL limit in seconds, with the name a capped renewal's warning gives it. */
  caps: { seconds: number; name: string }[];
  /** The secret's current version, for credential leases. */
  currentVersion?: string | null;
}

/** A renewal worked out for one moment: what was asked, what is granted and until when. */
export interface RenewalPlan {
  requested: number;
  granted: number;
  expiresAt: Date;
  warnings: string[];
}

/**
 * Reads the limits of a renewal of `lease`. Throws `InvalidState` when the account is
 * not active, the secret was deleted, or the grant was revoked or has ended. The caps
 * of an access-token lease are the account's max token TTL and the global cap. The
 * caps of a credential lease are the secret's and the grant's max TTL and the
 * account's max TTL.
 */
export async function renewalBounds(db: Executor, deps: Pick<BrokerDeps, "config" | "clock">, lease: LeaseRow): Promise<RenewalBounds> {
  const [account] = await db.select().from(serviceAccounts).where(eq(serviceAccounts.id, lease.serviceAccountId));
  if (!account || account.status !== "active") {
    throw new InvalidState(`lease ${lease.id} belongs to service account ${lease.serviceAccountId}, which is ${account?.status ?? "gone"}`);
  }
  const accountCap = { seconds: account.maxTokenTtl, name: `service account ${account.id}'s max_token_ttl of ${account.maxTokenTtl}s` };
  if (lease.kind !== CREDENTIAL_LEASE) {
    await checkTokenLeaseStillAllowed(db, deps.config.issuer, account, lease, deps.clock.now());
    const brokerCap = { seconds: deps.config.tokenTtlCap, name: `BROKER_TOKEN_TTL of ${deps.config.tokenTtlCap}s` };
    return { defaultIncrement: account.maxTokenTtl, caps: [accountCap, brokerCap] };
  }

  const [secret] = await db.select().from(secrets).where(eq(secrets.id, lease.secretId!));
  if (!secret || secret.deletedAt) {
    throw new InvalidState(`lease ${lease.id} is for secret ${lease.secretId}, which was deleted`);
  }
  const [grant] = await db.select().from(grants).where(eq(grants.id, lease.grantId!));
  const status = grant ? grantStatus(grant, deps.clock.now()) : "revoked";
  if (status !== "active") {
    throw new InvalidState(`lease ${lease.id} was issued under grant ${lease.grantId}, which is ${status}; obtain a new credential under a valid grant`);
  }
  const caps = [{ seconds: secret.maxTtl, name: `secret ${secret.name}'s max_ttl of ${secret.maxTtl}s` }, accountCap];
  if (grant!.maxTtl !== null) caps.push({ seconds: grant!.maxTtl, name: `grant ${grant!.id}'s max_ttl of ${grant!.maxTtl}s` });
  return { defaultIncrement: secret.defaultTtl, caps, currentVersion: secret.currentVersion };
}

/**
 * Works out a renewal of a live lease by `increment` seconds from `now` (the bounds'
 * default without one), capped by the bounds and the lease's max expiry. The increment
 * is advisory, as in Vault: a capped renewal succeeds with a warning.
 */
export function planRenewal(lease: LeaseRow, bounds: RenewalBounds, increment: number | undefined, now: Date): RenewalPlan {
  const status = leaseStatus(lease, now);
  if (status !== "active") {
    throw new InvalidState(`lease ${lease.id} is ${status} and cannot be renewed; obtain a new credential`);
  }
  const remaining = Math.floor((lease.maxExpiresAt.getTime() - now.getTime()) / 1000);
  if (remaining < 1) {
    throw new InvalidState(`lease ${lease.id} is past its max TTL and cannot be renewed; obtain a new credential`);
  }

  const requested = increment ?? bounds.defaultIncrement;
  const smallest = bounds.caps.reduce((least, cap) => (cap.seconds < least.seconds ? cap : least));
  const granted = Math.min(requested, remaining, smallest.seconds);
  const limit = remaining <= smallest.seconds ? `the lease's max expiry ${lease.maxExpiresAt.toISOString()}` : smallest.name;
  const warnings = granted < requested ? [`TTL of ${requested}s exceeded the effective max TTL; capped to ${granted}s by ${limit}`] : [];
  return { requested, granted, expiresAt: new Date(now.getTime() + granted * 1000), warnings };
}

/** Ends a renewal no later than the upstream credential, when the upstream granted less than the plan (as Vault may). */
export function capAtUpstream(plan: RenewalPlan, upstreamExpiresAt: Date | undefined, now: Date): RenewalPlan {
  if (upstreamExpiresAt === undefined || upstreamExpiresAt >= plan.expiresAt) {
    return plan;
  }
  const granted = Math.max(0, Math.floor((upstreamExpiresAt.getTime() - now.getTime()) / 1000));
  const warning = `TTL of ${plan.requested}s exceeded what the upstream granted; capped to ${granted}s, when the upstream credential expires`;
  return { ...plan, granted, expiresAt: new Date(now.getTime() + granted * 1000), warnings: [...plan.warnings, warning] };
}

/**
 * Renews a live lease in `tx` (see `planRenewal`). An access-token lease gets a new
 * token for the extended time, signed with `signingKey`, and the previous token stops
 * being active. The caller reads `signingKey` from the key ring, and renews an upstream
 * credential, before it opens `tx`; `upstreamExpiresAt` is when that credential now
 * expires, and the lease ends no later.
 */
export async function renewLease(
  deps: Pick<BrokerDeps, "config" | "clock">,
  tx: Executor,
  record: RecordAudit,
  lease: LeaseRow,
  increment: number | undefined,
  signingKey: ActiveSigningKey | undefined,
  now: Date,
  upstreamExpiresAt?: Date,
): Promise<RenewResult> {
  const bounds = await renewalBounds(tx, deps, lease);
  const plan = capAtUpstream(planRenewal(lease, bounds, increment, now), upstreamExpiresAt, now);

  let accessToken: string | undefined;
  let tokenJti = lease.tokenJti;
  if (lease.kind === ACCESS_TOKEN_LEASE && signingKey) {
    const signed = await signAccessToken(signingKey, {
      issuer: deps.config.issuer,
      serviceAccountId: lease.serviceAccountId,
      audience: lease.audience ?? deps.config.issuer,
      scopes: lease.scopes,
      leaseId: lease.id,
      issuedAt: now,
      expiresAt: plan.expiresAt,
    });
    accessToken = signed.token;
    tokenJti = signed.jti;
  }

  await tx
    .update(leases)
    .set({ expiresAt: plan.expiresAt, lastRenewedAt: now, renewCount: lease.renewCount + 1, tokenJti })
    .where(eq(leases.id, lease.id));
  record({
    action: "lease.renew",
    target: lease.id,
    details: { service_account_id: lease.serviceAccountId, requested: plan.requested, granted: plan.granted, capped: plan.granted < plan.requested, jti: tokenJti },
  });

  return {
    lease_id: lease.id,
    lease_duration: plan.granted,
    renewable: plan.expiresAt < lease.maxExpiresAt,
    expires_at: plan.expiresAt.toISOString(),
    warnings: plan.warnings,
    ...(accessToken ? { access_token: accessToken } : {}),
    ...(lease.kind === CREDENTIAL_LEASE ? { version: lease.secretVersion, current_version: bounds.currentVersion ?? null } : {}),
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
