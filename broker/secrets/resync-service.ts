import { and, eq } from "drizzle-orm";
import type { PendingVersion } from "../../adapters/contract.js";
import type { RequestContext } from "../audit/audit-types.js";
import { auditedTransaction } from "../audit/audit-writer.js";
import type { Executor } from "../db/database.js";
import { rotations, secretVersions, secrets } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { Conflict, InvalidState, NotFound } from "../errors.js";
import { auditDeps } from "../http/auth-middleware.js";
import { fingerprintOf } from "./fingerprint.js";
import { localSecretReader } from "./local-secret-reader.js";
import { type SecretRow, toSecretRef } from "./secret-views.js";
import { findSecret } from "./secrets-service.js";
import { retireCurrentVersion } from "./version-stages.js";

/** The outcome of a re-sync: the broker's current version before and after. */
export interface ResyncResult {
  secret_id: string;
  from_version: string | null;
  to_version: string;
  fingerprint: string | null;
  /** False when the broker's current version already was the upstream's. */
  changed: boolean;
}

/**
 * Records the upstream's current version of a static secret as the secret's current
 * version, after someone else wrote the upstream (a KV write outside the broker, a
 * static role that Vault rotated on its own schedule). The new version gets a
 * fingerprint and a sealed copy like any other; the current one becomes previous. The
 * upstream is read before the transaction, which then checks that no rotation started
 * and the current version did not change meanwhile. Leases keep the version they carry.
 */
export async function resyncSecret(deps: BrokerDeps, context: RequestContext, id: string, reason: string | null): Promise<ResyncResult> {
  const secret = await findSecret(deps.db, id);
  ensureResyncable(deps, secret);
  await ensureNoRotation(deps.db, secret);

  const latest = await deps.adapters.call(secret.adapter, toSecretRef(secret), "read_latest", localSecretReader(deps), (adapter, call) => adapter.readLatest!(call));
  if (latest.version === secret.currentVersion) {
    return { secret_id: id, from_version: secret.currentVersion, to_version: latest.version, fingerprint: null, changed: false };
  }
  const fingerprint = fingerprintOf(await deps.dataKeys.fingerprintKey(), latest.data);

  return auditedTransaction(auditDeps(deps), context, async (tx, record) => {
    const locked = await findSecret(tx, id, true);
    if (locked.deletedAt || locked.currentVersion !== secret.currentVersion) {
      throw new Conflict(`secret ${id} changed while its upstream was read (its current version is now ${locked.currentVersion ?? "none"}); re-sync it again`);
    }
    await ensureNoRotation(tx, locked);
    await recordVersion(tx, locked, latest, fingerprint, context.actor, deps.clock.now());
    record({
      action: "secret.resync",
      target: id,
      details: { name: secret.name, from_version: secret.currentVersion, to_version: latest.version, fingerprint, reason },
    });
    return { secret_id: id, from_version: secret.currentVersion, to_version: latest.version, fingerprint, changed: true };
  });
}

function ensureResyncable(deps: BrokerDeps, secret: SecretRow): void {
  if (secret.deletedAt) {
    throw new NotFound("secret", secret.id);
  }
  if (secret.kind !== "static") {
    throw new InvalidState(`secret ${secret.id} is dynamic and has no versions to re-sync: each lease gets its own credential`);
  }
  if (!deps.adapters.get(secret.adapter).readLatest) {
    throw new InvalidState(`secret ${secret.id} is kept by the ${secret.adapter} adapter, which has no upstream versions to re-sync from; only vault secrets can be re-synced`);
  }
}

/** Refuses a re-sync while a rotation of the secret runs: its pending version would be promoted over the re-synced one. */
async function ensureNoRotation(db: Executor, secret: SecretRow): Promise<void> {
  const [running] = await db
    .select({ id: rotations.id })
    .from(rotations)
    .where(and(eq(rotations.secretId, secret.id), eq(rotations.status, "in_progress")));
  if (running) {
    const conflict = new Conflict(`secret ${secret.id} has rotation ${running.id} in progress; wait for it to end (GET /v1/rotations/${running.id}), then re-sync`);
    conflict.extensions = { rotation_id: running.id };
    throw conflict;
  }
}

/** Stores `latest` as the current version, the old current one as previous. */
async function recordVersion(tx: Executor, secret: SecretRow, latest: PendingVersion, fingerprint: string, actor: string, now: Date): Promise<void> {
  const [known] = await tx
    .select({ stage: secretVersions.stage })
    .from(secretVersions)
    .where(and(eq(secretVersions.secretId, secret.id), eq(secretVersions.version, latest.version)));
  if (known) {
    throw new Conflict(`the upstream's latest version ${latest.version} of secret ${secret.id} is already recorded as ${known.stage}; the upstream went back to an older version, so rotate the secret instead`);
  }
  await retireCurrentVersion(tx, secret.id, secret.currentVersion, now);
  await tx.insert(secretVersions).values({
    secretId: secret.id,
    version: latest.version,
    stage: "current",
    fingerprint,
    sealedValue: latest.sealedValue,
    createdAt: now,
    createdBy: actor,
    promotedAt: now,
  });
  await tx.update(secrets).set({ currentVersion: latest.version, updatedAt: now }).where(eq(secrets.id, secret.id));
}
