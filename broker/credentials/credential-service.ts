import { and, eq, isNull, sql } from "drizzle-orm";
import type { IssuedCredential, SecretData } from "../../adapters/contract.js";
import type { RequestContext } from "../audit/audit-types.js";
import { auditedTransaction, recordAuditEvents } from "../audit/audit-writer.js";
import { type Executor, rowsOf, type Tx } from "../db/database.js";
import { newId } from "../db/ids.js";
import { grants, leases, secrets, secretVersions, serviceAccounts } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { BrokerError, InvalidState, NotFound } from "../errors.js";
import { chooseSecretGrant } from "../grants/grant-selection.js";
import type { GrantRow } from "../grants/grant-types.js";
import { auditDeps } from "../http/auth-middleware.js";
import type { Workload } from "../http/request-context.js";
import { findLease } from "../leases/lease-service.js";
import { CREDENTIAL_LEASE } from "../leases/lease-types.js";
import { loggableError } from "../logging/logger.js";
import type { ServiceAccountRow } from "../register/service-accounts-service.js";
import { localSecretReader } from "../secrets/local-secret-reader.js";
import { type SecretRow, toSecretRef, toVersionRef, type VersionRow } from "../secrets/secret-views.js";
import { credentialLimits } from "./credential-limits.js";

export interface CredentialRequest {
  secret: string;
  ttl: number | undefined;
}

/** Response of POST /v1/credentials: Vault's lease shape plus the version handed out. */
export interface CredentialResponse {
  lease_id: string;
  lease_duration: number;
  renewable: boolean;
  data: SecretData;
  version: string | null;
  expires_at: string;
  /** Set when the requested TTL was capped, as Vault's responses do. */
  warnings: string[];
}

/**
 * Issues a leased credential for a secret to the workload behind an access token. The
 * grant, account and parent lease are checked, the adapter issues the credential, and
 * the lease row and audit event commit before the value is returned. If that commit
 * fails (or a revocation won the race), the upstream credential just created is revoked
 * and the request fails.
 */
export async function issueCredential(deps: BrokerDeps, context: RequestContext, workload: Workload, request: CredentialRequest): Promise<CredentialResponse> {
  const now = deps.clock.now();
  const parent = workload.lease ?? (await findLease(deps.db, workload.leaseId));
  const { account, secret: found, current, grants: candidates } = await readIssueState(deps.db, workload.serviceAccountId, request.secret);
  let grant: GrantRow;
  try {
    grant = chooseSecretGrant(candidates, { serviceAccountId: account.id, secretId: found?.id, secretName: request.secret, tokenScopes: parent.scopes }, now);
  } catch (error) {
    await recordDenial(deps, context, account.id, request.secret, error);
    throw error;
  }
  // A grant names an existing secret: chooseSecretGrant refused a name with no live secret.
  const secret = found as SecretRow;
  const limits = credentialLimits(request, secret, grant, account, parent, now);

  const leaseId = newId("lease");
  const issued = await deps.adapters.call(secret.adapter, toSecretRef(secret), "issue", localSecretReader(deps), (adapter, call) =>
    adapter.issue(call, { leaseId, expiresAt: limits.expiresAt, current: current ? toVersionRef(current) : null }),
  );
  const expiresAt = issued.expiresAt && issued.expiresAt < limits.expiresAt ? issued.expiresAt : limits.expiresAt;
  const version = issued.version ?? current?.version ?? null;

  try {
    await auditedTransaction(auditDeps(deps), context, async (tx, record) => {
      await ensureStillAllowed(tx, grant, parent.id, now);
      await tx.insert(leases).values({
        id: leaseId,
        kind: CREDENTIAL_LEASE,
        serviceAccountId: account.id,
        applicationId: account.applicationId,
        parentLeaseId: parent.id,
        scopes: grant.scopes,
        grantType: "access_token",
        issuedAt: now,
        expiresAt,
        maxExpiresAt: limits.maxExpiresAt,
        sourceAddress: context.sourceAddress,
        requestId: context.requestId,
        secretId: secret.id,
        secretVersion: version,
        grantId: grant.id,
        adapter: secret.adapter,
        upstreamLeaseId: issued.upstreamLeaseId,
      });
      record({
        action: "credential.issue",
        target: leaseId,
        details: {
          service_account_id: account.id,
          secret_id: secret.id,
          secret: secret.name,
          version,
          grant_id: grant.id,
          parent_lease_id: parent.id,
          ttl: Math.round((expiresAt.getTime() - now.getTime()) / 1000),
          upstream_lease_id: issued.upstreamLeaseId,
        },
      });
    });
  } catch (error) {
    await revokeOrphan(deps, secret, issued, leaseId);
    throw error;
  }

  const leaseDuration = Math.round((expiresAt.getTime() - now.getTime()) / 1000);
  const warnings =
    request.ttl !== undefined && leaseDuration < request.ttl
      ? [`TTL of ${request.ttl}s exceeded the effective max TTL of the secret, grant, account or access-token lease; capped to ${leaseDuration}s`]
      : [];
  return {
    lease_id: leaseId,
    lease_duration: leaseDuration,
    warnings,
    renewable: expiresAt < limits.maxExpiresAt,
    data: issued.data,
    version,
    expires_at: expiresAt.toISOString(),
  };
}

/** State an issue needs, read in one query: the account, the live secret by name, its current version and the account's unrevoked grants for it. */
interface IssueState {
  account: ServiceAccountRow;
  secret: SecretRow | undefined;
  current: VersionRow | undefined;
  grants: GrantRow[];
}

async function readIssueState(db: Executor, serviceAccountId: string, secretName: string): Promise<IssueState> {
  const rows = await db
    .select({ account: serviceAccounts, secret: secrets, current: secretVersions, grant: grants })
    .from(serviceAccounts)
    .leftJoin(secrets, and(eq(secrets.name, secretName), isNull(secrets.deletedAt)))
    .leftJoin(secretVersions, and(eq(secretVersions.secretId, secrets.id), eq(secretVersions.version, secrets.currentVersion)))
    .leftJoin(grants, and(eq(grants.serviceAccountId, serviceAccounts.id), eq(grants.secretId, secrets.id), isNull(grants.revokedAt)))
    .where(eq(serviceAccounts.id, serviceAccountId));
  const [first] = rows;
  if (!first) {
    throw new NotFound("service account", serviceAccountId);
  }
  return {
    account: first.account,
    secret: first.secret ?? undefined,
    current: first.current ?? undefined,
    grants: rows.flatMap((row) => (row.grant ? [row.grant] : [])),
  };
}

/**
 * Re-checks, under row locks held to the commit, that the grant, the account and the
 * parent lease are still live: a revocation that commits first is seen here, and one
 * that commits later finds the new lease and revokes it.
 */
async function ensureStillAllowed(tx: Tx, grant: GrantRow, parentLeaseId: string, now: Date): Promise<void> {
  const at = now.toISOString();
  const result = await tx.execute(sql`
    select g.id from grants g
    join service_accounts sa on sa.id = g.service_account_id
    join leases p on p.id = ${parentLeaseId}
    where g.id = ${grant.id} and g.revoked_at is null
      and sa.status = 'active' and sa.expires_at > ${at}::timestamptz
      and p.revoked_at is null and p.expired_at is null and p.expires_at > ${at}::timestamptz
    for share of g, sa, p`);
  if (rowsOf(result).length === 0) {
    throw new InvalidState(`grant ${grant.id}, its service account or access-token lease ${parentLeaseId} was revoked while the credential was issued; request it again`);
  }
}

/** Revokes upstream a credential whose lease could not be recorded. Logs, with ids only, when that fails too. */
async function revokeOrphan(deps: BrokerDeps, secret: SecretRow, issued: IssuedCredential, leaseId: string): Promise<void> {
  if (!issued.upstreamLeaseId) {
    return;
  }
  const upstreamLeaseId = issued.upstreamLeaseId;
  const log = deps.log.child({ module: "credentials", leaseId, secretId: secret.id, upstreamLeaseId });
  try {
    await deps.adapters.call(secret.adapter, toSecretRef(secret), "revoke", localSecretReader(deps), (adapter, call) =>
      adapter.revoke(call, { upstreamLeaseId }),
    );
    log.warn("lease could not be recorded; the upstream credential was revoked");
  } catch (error) {
    log.error({ err: loggableError(error) }, "lease could not be recorded and revoking the upstream credential failed; revoke it by hand");
  }
}

async function recordDenial(deps: BrokerDeps, context: RequestContext, serviceAccountId: string, secretName: string, error: unknown): Promise<void> {
  if (!(error instanceof BrokerError)) {
    return;
  }
  await recordAuditEvents(auditDeps(deps), context, [
    { action: "credential.issue", outcome: "denied", target: null, details: { service_account_id: serviceAccountId, secret: secretName, reason: error.code } },
  ]);
}
