import type { RequestContext } from "../audit/audit-types.js";
import type { Db } from "../db/database.js";
import { type RawParameter, type RawStatement, rawStatement } from "../db/raw-statement.js";
import { type AccountVersion, keySetVersionSql } from "./account-snapshot.js";
import type { AssertionUse } from "./client-assertion.js";

/** The access-token lease as the token endpoint records it. */
export interface IssuedLease {
  id: string;
  serviceAccountId: string;
  applicationId: string;
  audience: string;
  scopes: string[];
  tokenJti: string;
  signingKid: string;
  grantType: string;
  clientKid: string | null;
  subjectIssuer: string | null;
  subject: string | null;
  grantId: string | null;
  issuedAt: Date;
  expiresAt: Date;
  maxExpiresAt: Date;
}

/**
 * One statement, so one round trip and one commit per token. The caller may have used a
 * cached snapshot of the account, so the statement first checks, under a share lock on the
 * account row, that the account is still active and unexpired. It also checks that the
 * account is as the caller read it: the same `revision`, and the same set of keys when a key
 * was used. Then it records the client assertion's `jti` (when there is
 * one), inserts the lease only if that `jti` was new, and appends the `token.issue` audit
 * event (unchained, see audit-chainer.ts) only with the lease.
 *
 * The share lock makes a concurrent update of the account, such as a suspension, wait for
 * this statement, or this statement wait for it and then see the new row. So a lease is
 * never inserted for an account whose suspension (which revokes live leases) committed
 * first. NOTE: adding or removing a key does not lock the account row, so a key removed
 * while this statement runs can still admit this one token. A `jti` already used,
 * on any replica, inserts nothing; a concurrent use of the same `jti` waits for the first
 * statement and then inserts nothing. Any error rolls back all three inserts.
 */
const RECORD_ISSUANCE_SQL = `
with account as (
  select sa.id from service_accounts sa
  where sa.id = $5::text and sa.status = 'active' and sa.expires_at > $16::timestamptz
    and ($23::bigint is null or sa.revision = $23::bigint)
    and ($24::text is null or $24::text = ${keySetVersionSql("sa.id")})
  for share
), used as (
  insert into used_assertions (issuer, jti, expires_at)
  select $1::text, $2::text, $3::timestamptz from account where $1::text is not null
  on conflict do nothing
  returning 1
), lease as (
  insert into leases (id, kind, service_account_id, application_id, audience, scopes, token_jti, signing_kid,
    grant_type, client_kid, subject_issuer, subject, grant_id, issued_at, expires_at, max_expires_at,
    source_address, request_id)
  select $4::text, 'access_token', account.id, $6::text, $7::text, $8::text[], $9::text, $10::text,
    $11::text, $12::text, $13::text, $14::text, $15::text, $16::timestamptz, $17::timestamptz, $18::timestamptz,
    $19::text, $20::text
  from account
  where $1::text is null or exists (select 1 from used)
  returning id
), audit as (
  insert into audit_events (occurred_at, actor, action, target, outcome, request_id, source_address, details)
  select $16::timestamptz, $21::text, 'token.issue', lease.id, 'success', $20::text, $19::text, $22::jsonb
  from lease
  returning 1
)
select (select count(*) from account)::int as current, (select count(*) from lease)::int as issued`;

/** Outcome of recording an issuance: `issued`, nothing because the `jti` was used (`replayed`), or nothing because the account changed (`stale`). */
export type IssuanceOutcome = "issued" | "replayed" | "stale";

const statements = new WeakMap<Db, RawStatement<{ current: number; issued: number }>>();

/** Records an issued token: the assertion's `jti`, the lease and its audit event, atomically. */
export async function recordIssuance(
  db: Db,
  context: RequestContext,
  lease: IssuedLease,
  assertionUse: AssertionUse | undefined,
  accountVersion: AccountVersion | undefined,
  auditDetails: Record<string, unknown>,
): Promise<IssuanceOutcome> {
  let statement = statements.get(db);
  if (!statement) {
    statement = rawStatement(db, RECORD_ISSUANCE_SQL);
    statements.set(db, statement);
  }
  const params: RawParameter[] = [
    assertionUse?.issuer ?? null,
    assertionUse?.jti ?? null,
    assertionUse?.expiresAt.toISOString() ?? null,
    lease.id,
    lease.serviceAccountId,
    lease.applicationId,
    lease.audience,
    lease.scopes,
    lease.tokenJti,
    lease.signingKid,
    lease.grantType,
    lease.clientKid,
    lease.subjectIssuer,
    lease.subject,
    lease.grantId,
    lease.issuedAt.toISOString(),
    lease.expiresAt.toISOString(),
    lease.maxExpiresAt.toISOString(),
    context.sourceAddress,
    context.requestId,
    context.actor,
    JSON.stringify(auditDetails),
    accountVersion?.revision ?? null,
    accountVersion?.keySet ?? null,
  ];
  const [row] = await statement(params);
  if (row?.current !== 1) {
    return "stale";
  }
  return row.issued === 1 ? "issued" : "replayed";
}
