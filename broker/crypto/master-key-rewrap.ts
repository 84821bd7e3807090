import { asc, eq, ne, notLike } from "drizzle-orm";
import { type AuditDeps, auditedTransaction, type RecordAudit } from "../audit/audit-writer.js";
import type { RequestContext } from "../audit/audit-types.js";
import type { Tx } from "../db/database.js";
import { dataKeys, signingKeys } from "../db/schema.js";
import { InvalidState } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import { dataKeyWrapContext } from "./data-key-ring.js";
import { EnvelopeError, keyedEnvelopePrefix, nameRecordInEnvelopeError } from "./envelope.js";
import type { MasterKeyRing } from "./master-key-ring.js";
import { signingKeySealContext } from "./signing-keys.js";

/** Stored keys re-wrapped per transaction: small enough to hold row locks briefly, large enough to finish quickly. */
export const REWRAP_BATCH_SIZE = 100;

export interface RewrapDeps extends AuditDeps {
  masterKeys: MasterKeyRing;
  log: Logger;
}

/** How many stored keys were moved off one older master key. */
export interface RewrapCount {
  masterKeyId: string;
  dataKeys: number;
  signingKeys: number;
}

type Tally = Map<string, RewrapCount>;

/**
 * Re-wraps every data key and signing key that the current master key did not wrap,
 * `REWRAP_BATCH_SIZE` at a time, each batch in one transaction with one
 * `master_key.rewrap` audit event (ids and counts, never key material). Rows are claimed
 * with FOR UPDATE SKIP LOCKED, so replicas running this at once share the work. The
 * plaintext keys do not change, so every copy unwrapped in memory stays valid.
 *
 * Throws `InvalidState` naming the row and the master key id when a row's master key is
 * not in the ring. Batches committed before it stay committed, so a rerun continues.
 */
export async function rewrapStoredKeys(deps: RewrapDeps, context: RequestContext): Promise<RewrapCount[]> {
  const tally: Tally = new Map();
  const targetKeyId = deps.masterKeys.currentKeyId;
  deps.log.info({ masterKeyId: targetKeyId }, "re-wrapping stored keys under the current master key");

  let batches = 0;
  while ((await runBatch(deps, context, tally, rewrapDataKeyBatch)) > 0) {
    batches += 1;
  }
  while ((await runBatch(deps, context, tally, rewrapSigningKeyBatch)) > 0) {
    batches += 1;
  }

  const counts = [...tally.values()];
  deps.log.info(
    {
      masterKeyId: targetKeyId,
      batches,
      dataKeys: counts.reduce((sum, count) => sum + count.dataKeys, 0),
      signingKeys: counts.reduce((sum, count) => sum + count.signingKeys, 0),
    },
    "stored keys re-wrapped",
  );
  return counts;
}

/** One committed batch: what kind of key, which ids, and how many came from each older master key. */
interface Batch {
  kind: "data_key" | "signing_key";
  ids: string[];
  from: Tally;
}

type BatchWork = (tx: Tx, deps: RewrapDeps) => Promise<Batch>;

async function runBatch(deps: RewrapDeps, context: RequestContext, tally: Tally, work: BatchWork): Promise<number> {
  const batch = await auditedTransaction(deps, context, async (tx, record) => {
    const result = await work(tx, deps);
    if (result.ids.length > 0) {
      recordBatch(record, deps.masterKeys.currentKeyId, result);
    }
    return result;
  });
  // Count only once the batch has committed, so that a failed batch is not reported as done.
  for (const count of batch.from.values()) {
    const total = tallyEntry(tally, count.masterKeyId);
    total.dataKeys += count.dataKeys;
    total.signingKeys += count.signingKeys;
  }
  if (batch.ids.length > 0) {
    deps.log.info({ kind: batch.kind, count: batch.ids.length }, "re-wrapped a batch of stored keys");
  }
  return batch.ids.length;
}

async function rewrapDataKeyBatch(tx: Tx, deps: RewrapDeps): Promise<Batch> {
  const { masterKeys, clock } = deps;
  const rows = await tx
    .select()
    .from(dataKeys)
    .where(ne(dataKeys.masterKeyId, masterKeys.currentKeyId))
    .orderBy(asc(dataKeys.id))
    .limit(REWRAP_BATCH_SIZE)
    .for("update", { skipLocked: true });

  const from: Tally = new Map();
  for (const row of rows) {
    const context = dataKeyWrapContext(row.id, row.purpose);
    const { plaintext, keyId } = openForRewrap(masterKeys, row.wrappedKey, context, `data key ${row.id}`);
    await tx
      .update(dataKeys)
      .set({ wrappedKey: masterKeys.seal(plaintext, context), masterKeyId: masterKeys.currentKeyId, rewrappedAt: clock.now() })
      .where(eq(dataKeys.id, row.id));
    tallyEntry(from, keyId).dataKeys += 1;
  }
  return { kind: "data_key", ids: rows.map((row) => row.id), from };
}

async function rewrapSigningKeyBatch(tx: Tx, deps: RewrapDeps): Promise<Batch> {
  const { masterKeys } = deps;
  // Master key ids are hex, so the prefix contains no LIKE wildcard. v1 envelopes never match it.
  const rows = await tx
    .select({ kid: signingKeys.kid, ciphertext: signingKeys.privateKeyCiphertext })
    .from(signingKeys)
    .where(notLike(signingKeys.privateKeyCiphertext, `${keyedEnvelopePrefix(masterKeys.currentKeyId)}%`))
    .orderBy(asc(signingKeys.kid))
    .limit(REWRAP_BATCH_SIZE)
    .for("update", { skipLocked: true });

  const from: Tally = new Map();
  for (const row of rows) {
    const context = signingKeySealContext(row.kid);
    const { plaintext, keyId } = openForRewrap(masterKeys, row.ciphertext, context, `signing key ${row.kid}`);
    await tx.update(signingKeys).set({ privateKeyCiphertext: masterKeys.seal(plaintext, context) }).where(eq(signingKeys.kid, row.kid));
    tallyEntry(from, keyId).signingKeys += 1;
  }
  return { kind: "signing_key", ids: rows.map((row) => row.kid), from };
}

function openForRewrap(masterKeys: MasterKeyRing, envelope: string, context: string, record: string): { plaintext: Buffer; keyId: string } {
  try {
    return masterKeys.openWithKeyId(envelope, context);
  } catch (error) {
    if (!(error instanceof EnvelopeError)) {
      throw error;
    }
    const described = nameRecordInEnvelopeError(error, record) as EnvelopeError;
    throw new InvalidState(`cannot re-wrap ${described.message}`);
  }
}

function recordBatch(record: RecordAudit, targetKeyId: string, batch: Batch): void {
  record({
    action: "master_key.rewrap",
    target: targetKeyId,
    details: {
      master_key_id: targetKeyId,
      kind: batch.kind,
      count: batch.ids.length,
      ids: batch.ids,
      from: [...batch.from.values()].map((count) => ({
        master_key_id: count.masterKeyId,
        data_keys: count.dataKeys,
        signing_keys: count.signingKeys,
      })),
    },
  });
}

function tallyEntry(tally: Tally, masterKeyId: string): RewrapCount {
  let entry = tally.get(masterKeyId);
  if (!entry) {
    entry = { masterKeyId, dataKeys: 0, signingKeys: 0 };
    tally.set(masterKeyId, entry);
  }
  return entry;
}
