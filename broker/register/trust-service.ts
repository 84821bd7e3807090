import { and, asc, eq } from "drizzle-orm";
import type { RecordAudit } from "../audit/audit-writer.js";
import type { Clock } from "../config/clock.js";
import type { Executor } from "../db/database.js";
import { newId } from "../db/ids.js";
import { federatedSubjects, trustedIssuers, workloadKeys } from "../db/schema.js";
import { Conflict, InvalidState, NotFound, ValidationFailed } from "../errors.js";
import { validatePublicJwk } from "./public-jwk.js";
import { findServiceAccount } from "./service-accounts-service.js";
import type {
  FederatedSubjectCreateInput,
  FederatedSubjectView,
  TrustedIssuerCreateInput,
  TrustedIssuerView,
  WorkloadKeyView,
} from "./trust-schemas.js";

/** Registers a public key with which the account signs RFC 7523 client assertions. */
export async function addWorkloadKey(
  tx: Executor,
  clock: Clock,
  record: RecordAudit,
  serviceAccountId: string,
  jwk: Record<string, unknown>,
): Promise<WorkloadKeyView> {
  const account = await findServiceAccount(tx, serviceAccountId, true);
  if (account.status === "decommissioned") {
    throw new InvalidState(`service account ${serviceAccountId} is decommissioned; keys can no longer be added`);
  }
  const checked = await validatePublicJwk(jwk, "jwk");
  if ("errors" in checked) {
    throw new ValidationFailed(checked.errors);
  }

  const { kid, alg } = checked.ok;
  const [existing] = await tx
    .select({ id: workloadKeys.id })
    .from(workloadKeys)
    .where(and(eq(workloadKeys.serviceAccountId, serviceAccountId), eq(workloadKeys.kid, kid)));
  if (existing) {
    throw new Conflict(`service account ${serviceAccountId} already has a key with kid '${kid}'`);
  }

  const [row] = await tx
    .insert(workloadKeys)
    .values({ id: newId("key"), serviceAccountId, kid, alg, jwk: checked.ok.jwk, createdAt: clock.now() })
    .returning();
  record({ action: "workload_key.add", target: serviceAccountId, details: { key_id: row!.id, kid, alg } });
  return toWorkloadKeyView(row!);
}

export async function listWorkloadKeys(db: Executor, serviceAccountId: string): Promise<WorkloadKeyView[]> {
  await findServiceAccount(db, serviceAccountId);
  const rows = await db
    .select()
    .from(workloadKeys)
    .where(eq(workloadKeys.serviceAccountId, serviceAccountId))
    .orderBy(asc(workloadKeys.createdAt));
  return rows.map(toWorkloadKeyView);
}

export async function removeWorkloadKey(
  tx: Executor,
  record: RecordAudit,
  serviceAccountId: string,
  kid: string,
): Promise<void> {
  const deleted = await tx
    .delete(workloadKeys)
    .where(and(eq(workloadKeys.serviceAccountId, serviceAccountId), eq(workloadKeys.kid, kid)))
    .returning();
  if (deleted.length === 0) {
    throw new NotFound(`key of service account ${serviceAccountId} with kid`, kid);
  }
  record({ action: "workload_key.remove", target: serviceAccountId, details: { key_id: deleted[0]!.id, kid } });
}

export async function createTrustedIssuer(
  tx: Executor,
  clock: Clock,
  record: RecordAudit,
  input: TrustedIssuerCreateInput,
): Promise<TrustedIssuerView> {
  const keys: Record<string, unknown>[] = [];
  for (const [index, key] of (input.jwks?.keys ?? []).entries()) {
    // SPIRE marks JWT-SVID signing keys with use "jwt-svid".
    const checked = await validatePublicJwk(key, `jwks.keys[${index}]`, ["sig", "jwt-svid"]);
    if ("errors" in checked) {
      throw new ValidationFailed(checked.errors);
    }
    keys.push(checked.ok.jwk);
  }
  const [existing] = await tx.select({ id: trustedIssuers.id }).from(trustedIssuers).where(eq(trustedIssuers.issuer, input.issuer));
  if (existing) {
    throw new Conflict(`issuer '${input.issuer}' is already trusted (${existing.id})`);
  }

  const now = clock.now();
  const [row] = await tx
    .insert(trustedIssuers)
    .values({
      id: newId("iss"),
      issuer: input.issuer,
      jwks: input.jwks ? { keys } : null,
      jwksUri: input.jwks_uri ?? null,
      audiences: input.audiences,
      createdAt: now,
      updatedAt: now,
    })
    .returning();
  record({
    action: "trusted_issuer.create",
    target: row!.id,
    details: { issuer: row!.issuer, jwks_uri: row!.jwksUri, inline_keys: keys.length },
  });
  return toTrustedIssuerView(row!);
}

export async function listTrustedIssuers(db: Executor): Promise<TrustedIssuerView[]> {
  const rows = await db.select().from(trustedIssuers).orderBy(asc(trustedIssuers.issuer));
  return rows.map(toTrustedIssuerView);
}

export async function getTrustedIssuer(db: Executor, id: string): Promise<TrustedIssuerView> {
  const [row] = await db.select().from(trustedIssuers).where(eq(trustedIssuers.id, id));
  if (!row) {
    throw new NotFound("trusted issuer", id);
  }
  return toTrustedIssuerView(row);
}

export async function deleteTrustedIssuer(tx: Executor, record: RecordAudit, id: string): Promise<void> {
  await getTrustedIssuer(tx, id);
  const [bound] = await tx.select({ id: federatedSubjects.id }).from(federatedSubjects).where(eq(federatedSubjects.issuerId, id)).limit(1);
  if (bound) {
    throw new Conflict(`trusted issuer ${id} is used by federated subject ${bound.id}; remove its federated subjects first`);
  }
  await tx.delete(trustedIssuers).where(eq(trustedIssuers.id, id));
  record({ action: "trusted_issuer.delete", target: id });
}

/** Binds tokens of a trusted issuer with this subject (and these claims) to the account. */
export async function addFederatedSubject(
  tx: Executor,
  clock: Clock,
  record: RecordAudit,
  serviceAccountId: string,
  input: FederatedSubjectCreateInput,
): Promise<FederatedSubjectView> {
  const account = await findServiceAccount(tx, serviceAccountId, true);
  if (account.status === "decommissioned") {
    throw new InvalidState(`service account ${serviceAccountId} is decommissioned; federated subjects can no longer be added`);
  }
  const [issuer] = await tx.select().from(trustedIssuers).where(eq(trustedIssuers.issuer, input.issuer));
  if (!issuer) {
    throw new ValidationFailed([
      { name: "issuer", reason: `'${input.issuer}' is not a trusted issuer; register it with POST /v1/trusted-issuers first` },
    ]);
  }
  const [existing] = await tx
    .select({ id: federatedSubjects.id })
    .from(federatedSubjects)
    .where(
      and(
        eq(federatedSubjects.serviceAccountId, serviceAccountId),
        eq(federatedSubjects.issuerId, issuer.id),
        eq(federatedSubjects.subject, input.subject),
      ),
    );
  if (existing) {
    throw new Conflict(`service account ${serviceAccountId} already trusts subject '${input.subject}' of this issuer (${existing.id})`);
  }

  const [row] = await tx
    .insert(federatedSubjects)
    .values({
      id: newId("fed"),
      serviceAccountId,
      issuerId: issuer.id,
      subject: input.subject,
      claims: input.claims,
      createdAt: clock.now(),
    })
    .returning();
  record({
    action: "federated_subject.add",
    target: serviceAccountId,
    details: { federated_subject_id: row!.id, issuer: issuer.issuer, subject: row!.subject, claims: row!.claims },
  });
  return { ...toFederatedSubjectView(row!), issuer: issuer.issuer };
}

export async function listFederatedSubjects(db: Executor, serviceAccountId: string): Promise<FederatedSubjectView[]> {
  await findServiceAccount(db, serviceAccountId);
  const rows = await db
    .select({ subject: federatedSubjects, issuer: trustedIssuers.issuer })
    .from(federatedSubjects)
    .innerJoin(trustedIssuers, eq(trustedIssuers.id, federatedSubjects.issuerId))
    .where(eq(federatedSubjects.serviceAccountId, serviceAccountId))
    .orderBy(asc(federatedSubjects.createdAt));
  return rows.map((row) => ({ ...toFederatedSubjectView(row.subject), issuer: row.issuer }));
}

export async function removeFederatedSubject(
  tx: Executor,
  record: RecordAudit,
  serviceAccountId: string,
  federatedSubjectId: string,
): Promise<void> {
  const deleted = await tx
    .delete(federatedSubjects)
    .where(and(eq(federatedSubjects.serviceAccountId, serviceAccountId), eq(federatedSubjects.id, federatedSubjectId)))
    .returning();
  if (deleted.length === 0) {
    throw new NotFound(`federated subject of service account ${serviceAccountId}`, federatedSubjectId);
  }
  record({ action: "federated_subject.remove", target: serviceAccountId, details: { federated_subject_id: federatedSubjectId } });
}

function toWorkloadKeyView(row: typeof workloadKeys.$inferSelect): WorkloadKeyView {
  return {
    id: row.id,
    service_account_id: row.serviceAccountId,
    kid: row.kid,
    alg: row.alg,
    jwk: row.jwk,
    created_at: row.createdAt.toISOString(),
  };
}

function toTrustedIssuerView(row: typeof trustedIssuers.$inferSelect): TrustedIssuerView {
  return {
    id: row.id,
    issuer: row.issuer,
    jwks: row.jwks ?? null,
    jwks_uri: row.jwksUri,
    audiences: row.audiences,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

function toFederatedSubjectView(row: typeof federatedSubjects.$inferSelect): Omit<FederatedSubjectView, "issuer"> & { issuer: string } {
  return {
    id: row.id,
    service_account_id: row.serviceAccountId,
    issuer: "",
    issuer_id: row.issuerId,
    subject: row.subject,
    claims: row.claims,
    created_at: row.createdAt.toISOString(),
  };
}
