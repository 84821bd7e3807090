import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { recordAuditEvents } from "../audit/audit-writer.js";
import type { BrokerDeps } from "../deps.js";
import { BrokerError } from "../errors.js";
import { auditDeps } from "../http/auth-middleware.js";
import { jsonBody, jsonResponse, PageQuery, pageOf } from "../http/common-schemas.js";
import { type AppEnv, requestContext } from "../http/request-context.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../http/route-helpers.js";
import { revokingTransaction } from "./revoking-transaction.js";
import { revokeLeases, type RevocationScope } from "./lease-revocation.js";
import {
  BulkRevokeRequest,
  BulkRevokeResponse,
  Lease,
  LeaseFilterQuery,
  LeaseIdParams,
  RenewRequest,
  RenewResponse,
  RevokeRequest,
} from "./lease-schemas.js";
import { localSecretReader } from "../secrets/local-secret-reader.js";
import { toSecretRef } from "../secrets/secret-views.js";
import { findSecret } from "../secrets/secrets-service.js";
import { findLease, listLeases, planRenewal, renewalBounds, renewLease } from "./lease-service.js";
import { ACCESS_TOKEN_LEASE, type LeaseRow, toLeaseView } from "./lease-types.js";

const LeasePage = z.object({ items: z.array(Lease), next_cursor: z.string().nullable() }).openapi("LeasePage");

export function registerLeaseRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/leases",
      tags: ["leases"],
      summary: "List leases, with filters",
      request: { query: LeaseFilterQuery.extend(PageQuery) },
      responses: { 200: jsonResponse(LeasePage, "One page of leases, ordered by id") },
    }),
    async (c) => {
      const { limit, cursor, ...query } = c.req.valid("query");
      const now = deps.clock.now();
      const rows = await listLeases(
        deps.db,
        now,
        {
          serviceAccountId: query.service_account_id,
          applicationId: query.application_id,
          secretId: query.secret_id,
          grantId: query.grant_id,
          status: query.status,
          issuedAfter: query.issued_after ? new Date(query.issued_after) : undefined,
          issuedBefore: query.issued_before ? new Date(query.issued_before) : undefined,
        },
        cursor,
        limit + 1,
      );
      return c.json(pageOf(rows.map((row) => toLeaseView(row, now)), limit), 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/leases/{id}",
      tags: ["leases"],
      summary: "Read a lease",
      request: { params: LeaseIdParams },
      responses: { 200: jsonResponse(Lease, "The lease") },
    }),
    async (c) => c.json(toLeaseView(await findLease(deps.db, c.req.valid("param").id), deps.clock.now()), 200),
  );

  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/leases/revoke",
      tags: ["leases"],
      summary: "Revoke every live lease of a service account, an application, or with an id prefix",
      request: { body: jsonBody(BulkRevokeRequest) },
      responses: { 200: jsonResponse(BulkRevokeResponse, "How many leases were revoked, children included") },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const scope = bulkScope(body);
      const { result: ids, upstream } = await revokingTransaction(deps, requestContext(c), (tx, record) =>
        revokeLeases(tx, deps.clock.now(), record, scope, requestContext(c).actor, body.reason ?? null),
      );
      return c.json({ revoked: ids.length, lease_ids: ids, upstream }, 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/leases/{id}/renew",
      tags: ["leases"],
      summary: "Renew a lease: an operator, or the workload that holds it",
      request: { params: LeaseIdParams, body: { ...jsonBody(RenewRequest), required: false } },
      responses: { 200: jsonResponse(RenewResponse, "The duration actually granted, with a warning when capped") },
    }, { allowWorkload: true }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { increment } = c.req.valid("json") ?? {};
      const lease = await findLease(deps.db, id);
      await ensureOwnLease(deps, c, lease, "lease.renew");
      const now = deps.clock.now();
      const signingKey = lease.kind === ACCESS_TOKEN_LEASE ? await deps.keyRing.activeKey() : undefined;
      const upstreamExpiresAt = lease.upstreamLeaseId ? await renewUpstream(deps, lease, increment, now) : undefined;
      const result = await inAuditedTransaction(deps, c, async (tx, record) =>
        renewLease(deps, tx, record, await findLease(tx, id, true), increment, signingKey, now, upstreamExpiresAt),
      );
      return c.json(result, 200, { "Cache-Control": "no-store" });
    },
  );

  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/leases/{id}/revoke",
      tags: ["leases"],
      summary: "Revoke a lease and its children: an operator, or the workload that holds it",
      request: { params: LeaseIdParams, body: { ...jsonBody(RevokeRequest), required: false } },
      responses: { 200: jsonResponse(BulkRevokeResponse, "The revoked leases; none when it had already ended") },
    }, { allowWorkload: true }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { reason } = c.req.valid("json") ?? {};
      await ensureOwnLease(deps, c, await findLease(deps.db, id), "lease.revoke");
      const { result: ids, upstream } = await revokingTransaction(deps, requestContext(c), async (tx, record) => {
        await findLease(tx, id, true);
        return revokeLeases(tx, deps.clock.now(), record, { leaseId: id }, requestContext(c).actor, reason ?? null);
      });
      return c.json({ revoked: ids.length, lease_ids: ids, upstream }, 200);
    },
  );
}

function bulkScope(body: z.infer<typeof BulkRevokeRequest>): RevocationScope {
  if (body.service_account_id) return { serviceAccountId: body.service_account_id };
  if (body.application_id) return { applicationId: body.application_id };
  if (body.secret_id) return body.secret_version ? { secretId: body.secret_id, version: body.secret_version } : { secretId: body.secret_id };
  return { prefix: body.prefix! };
}

/**
 * Moves a dynamic credential's upstream expiry to what the renewal will grant, before
 * the lease row changes: if the upstream refuses, the lease stays as it was. Returns the
 * upstream's expiry when it granted less (Vault caps at the lease's max TTL).
 */
async function renewUpstream(deps: BrokerDeps, lease: LeaseRow, increment: number | undefined, now: Date): Promise<Date | undefined> {
  const plan = planRenewal(lease, await renewalBounds(deps.db, deps, lease), increment, now);
  const secret = await findSecret(deps.db, lease.secretId!);
  const renewed = await deps.adapters.call(lease.adapter!, toSecretRef(secret), "renew", localSecretReader(deps), (adapter, call) =>
    adapter.renew(call, { upstreamLeaseId: lease.upstreamLeaseId! }, plan.expiresAt),
  );
  return renewed?.expiresAt;
}

/** Refuses, audited, a workload acting on another account's lease. */
async function ensureOwnLease(deps: BrokerDeps, c: Context<AppEnv>, lease: LeaseRow, action: string): Promise<void> {
  const workload = c.get("workload");
  if (!workload || lease.serviceAccountId === workload.serviceAccountId) {
    return;
  }
  const leaseId = lease.id;
  await recordAuditEvents(auditDeps(deps), requestContext(c), [
    { action, outcome: "denied", target: leaseId, details: { reason: "lease belongs to another service account", owner: lease.serviceAccountId } },
  ]);
  throw new BrokerError("forbidden", `lease ${leaseId} belongs to another service account; a workload may act only on its own leases`);
}
