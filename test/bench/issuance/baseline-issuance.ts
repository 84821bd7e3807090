import { sql } from "drizzle-orm";
import { integer, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { generateKeyPair, jwtVerify } from "jose";
import type { Db } from "../../../broker/db/database.js";
import { newId } from "../../../broker/db/ids.js";
import { signAccessToken } from "../../../broker/tokens/access-token.js";
import type { ActiveSigningKey } from "../../../broker/tokens/signing-key-ring.js";
import { BENCH_SCOPE, type BenchWorkload } from "./bench-workload.js";

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/** Access-token TTL of baseline rows: the broker's default cap of 15 minutes, in milliseconds. */
const BASELINE_TTL_MS = 15 * 60 * 1000;
/** Maximum life of a baseline lease: the broker's default lease max TTL of one hour, in milliseconds. */
const BASELINE_MAX_TTL_MS = 60 * 60 * 1000;

/**
 * The baseline's lease table: the columns of `leases`, created with LIKE ... INCLUDING ALL so
 * that it also has the same primary key, unique jti index and other indexes. LIKE copies no
 * foreign key, so the insert skips the broker's check that the service account exists.
 */
const baselineLeases = pgTable("bench_issuance_leases", {
  id: text("id").primaryKey(),
  kind: text("kind").notNull(),
  serviceAccountId: text("service_account_id").notNull(),
  applicationId: text("application_id").notNull(),
  parentLeaseId: text("parent_lease_id"),
  audience: text("audience"),
  scopes: text("scopes").array().notNull(),
  tokenJti: text("token_jti"),
  signingKid: text("signing_kid"),
  grantType: text("grant_type").notNull(),
  clientKid: text("client_kid"),
  subjectIssuer: text("subject_issuer"),
  subject: text("subject"),
  issuedAt: timestamptz("issued_at").notNull(),
  expiresAt: timestamptz("expires_at").notNull(),
  maxExpiresAt: timestamptz("max_expires_at").notNull(),
  lastRenewedAt: timestamptz("last_renewed_at"),
  renewCount: integer("renew_count").notNull().default(0),
  revokedAt: timestamptz("revoked_at"),
  revokedBy: text("revoked_by"),
  revokeReason: text("revoke_reason"),
  expiredAt: timestamptz("expired_at"),
  sourceAddress: text("source_address"),
  requestId: text("request_id"),
});

/**
 * Prepares the baseline on `db`: creates the lease-shaped table and an ES256 signing key,
 * and returns the per-request work, which is the least that issuing a token needs. It runs
 * one jwtVerify of the client assertion with a public key imported once, and one SignJWT of
 * the access token (signAccessToken) with the claims that the token endpoint issues when the
 * request has no `audience` or `scope`. Last comes one INSERT of the lease row in its own
 * implicit transaction.
 */
export async function prepareBaseline(db: Db, workload: BenchWorkload, issuer: string): Promise<(assertion: string) => Promise<boolean>> {
  await db.execute(sql.raw("drop table if exists bench_issuance_leases"));
  await db.execute(sql.raw("create table bench_issuance_leases (like leases including all)"));
  const { privateKey } = await generateKeyPair("ES256");
  const signingKey: ActiveSigningKey = { kid: "bench-baseline", alg: "ES256", privateKey };

  return async function issueBaselineToken(assertion: string): Promise<boolean> {
    await jwtVerify(assertion, workload.publicKey, {
      algorithms: ["ES256"],
      issuer: workload.accountId,
      subject: workload.accountId,
      audience: issuer,
      requiredClaims: ["exp", "jti", "aud"],
    });

    const now = new Date();
    const leaseId = newId("lease");
    const expiresAt = new Date(now.getTime() + BASELINE_TTL_MS);
    const signed = await signAccessToken(signingKey, {
      issuer,
      serviceAccountId: workload.accountId,
      audience: issuer,
      scopes: [BENCH_SCOPE],
      leaseId,
      issuedAt: now,
      expiresAt,
    });

    await db.insert(baselineLeases).values({
      id: leaseId,
      kind: "access_token",
      serviceAccountId: workload.accountId,
      applicationId: workload.applicationId,
      audience: issuer,
      scopes: [BENCH_SCOPE],
      tokenJti: signed.jti,
      signingKid: signed.kid,
      grantType: "client_credentials",
      clientKid: workload.kid,
      subjectIssuer: null,
      subject: null,
      issuedAt: now,
      expiresAt,
      maxExpiresAt: new Date(now.getTime() + BASELINE_MAX_TTL_MS),
      sourceAddress: "127.0.0.1",
      requestId: crypto.randomUUID(),
    });
    return true;
  };
}
