import type { AuditEntry, RequestContext } from "../audit/audit-types.js";
import { auditedTransaction, type RecordAudit } from "../audit/audit-writer.js";
import type { Tx } from "../db/database.js";
import type { BrokerDeps } from "../deps.js";
import { auditDeps } from "../http/auth-middleware.js";
import { revokeSecretUpstreamNow } from "./secret-upstream-revoker.js";
import { revokeUpstreamNow, type UpstreamRevokeSummary } from "./upstream-revoker.js";

export interface RevokingOptions {
  /**
   * The secret whose every live lease the work revokes, so that its upstream credentials
   * may be ended with one request where the adapter allows it. Only a secret deletion
   * sets it: it revokes the secret's grants in the same transaction, so no lease issued
   * meanwhile can commit afterwards. A bulk revocation by secret id keeps the grants, and
   * a credential issued while the request runs would end upstream under a live lease.
   */
  allLeasesOfSecret?: string;
}

/**
 * Runs an audited transaction, then revokes upstream the credentials of every lease it
 * revoked (seen through its `lease.revoke` audit entries). The upstream step runs after
 * the commit, so that a slow or failing upstream never keeps the transaction open or
 * undoes the revocation. The sweep job retries what it could not finish.
 */
export async function revokingTransaction<T>(
  deps: BrokerDeps,
  context: RequestContext,
  work: (tx: Tx, record: RecordAudit) => Promise<T>,
  options: RevokingOptions = {},
): Promise<{ result: T; upstream: UpstreamRevokeSummary }> {
  const revokedUpstream: string[] = [];
  const result = await auditedTransaction(auditDeps(deps), context, (tx, record) =>
    work(tx, (entry: AuditEntry) => {
      if (entry.action === "lease.revoke" && entry.target && entry.details?.["upstream_lease_id"]) {
        revokedUpstream.push(entry.target);
      }
      record(entry);
    }),
  );
  const upstream =
    options.allLeasesOfSecret === undefined ? await revokeUpstreamNow(deps, revokedUpstream) : await revokeSecretUpstreamNow(deps, options.allLeasesOfSecret, revokedUpstream);
  return { result, upstream };
}
