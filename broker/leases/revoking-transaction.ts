import type { AuditEntry, RequestContext } from "../audit/audit-types.js";
import { auditedTransaction, type RecordAudit } from "../audit/audit-writer.js";
import type { Tx } from "../db/database.js";
import type { BrokerDeps } from "../deps.js";
import { auditDeps } from "../http/auth-middleware.js";
import { revokeUpstreamNow, type UpstreamRevokeSummary } from "./upstream-revoker.js";

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
  const upstream = await revokeUpstreamNow(deps, revokedUpstream);
  return { result, upstream };
}
