import { recordAuditEvents } from "../audit/audit-writer.js";
import type { RequestContext } from "../audit/audit-types.js";
import { loggableError } from "../logging/logger.js";
import type { SigningKeyRing } from "../tokens/signing-key-ring.js";
import { decodeKeyFile, generateMasterKey } from "./master-key.js";
import { readKeyFile, replaceKeyFile } from "./master-key-file.js";
import { type MasterKeyRing, type MasterKeySource, masterKeyId } from "./master-key-ring.js";
import { type RewrapCount, type RewrapDeps, rewrapStoredKeys } from "./master-key-rewrap.js";
import { masterKeyIdsInUse, masterKeyUsage } from "./master-key-usage.js";

export interface MasterKeyRotationDeps extends RewrapDeps {
  /** Its cache is dropped after the re-wrap, so that the next read returns the new ciphertexts. */
  keyRing: SigningKeyRing;
}

/** Outcome of one rotation, as ids and counts. */
export interface MasterKeyRotation {
  source: MasterKeySource;
  currentKeyId: string;
  /** True when the rotation generated a new key, which happens in file mode only. */
  generatedKey: boolean;
  rewrapped: RewrapCount[];
  /** Master keys that still wrap a stored key after the rotation; null stands for an unknown key. */
  keyIdsInUse: (string | null)[];
  /**
   * Older keys that no longer wrap anything. With BROKER_MASTER_KEY, remove them from the
   * variable at the next restart; in file mode they have been removed from the key file.
   */
  retiredKeyIds: string[];
}

/** Rotations in flight per ring: one process runs one rotation at a time. */
const rotationsInFlight = new WeakMap<MasterKeyRing, Promise<unknown>>();

/**
 * Moves every stored key under the current master key, without downtime.
 *
 * With BROKER_MASTER_KEY the operator has already put the new key first and restarted
 * every replica. This re-wraps and reports which older keys can be removed at the next
 * restart. In file mode it generates the new key itself. It writes the key file with the
 * new key first and the old ones after it, switches this process to the new key,
 * re-wraps, then rewrites the file with the new key only. A file that already lists
 * several keys means that an earlier rotation stopped half way, so that rotation is
 * finished instead of generating another key.
 */
export function rotateMasterKey(deps: MasterKeyRotationDeps, context: RequestContext): Promise<MasterKeyRotation> {
  const previous = rotationsInFlight.get(deps.masterKeys) ?? Promise.resolve();
  const rotation = previous.catch(() => undefined).then(() => runRotation(deps, context));
  rotationsInFlight.set(deps.masterKeys, rotation);
  return rotation;
}

async function runRotation(deps: MasterKeyRotationDeps, context: RequestContext): Promise<MasterKeyRotation> {
  const { masterKeys, log } = deps;
  const switched = masterKeys.source === "file" ? await switchToNewFileKey(masterKeys) : { generated: false };
  log.info({ masterKeyId: masterKeys.currentKeyId, source: masterKeys.source, generatedKey: switched.generated }, "master key rotation started");

  let rewrapped: RewrapCount[];
  try {
    rewrapped = await rewrapStoredKeys(deps, context);
  } catch (error) {
    log.error({ err: loggableError(error), masterKeyId: masterKeys.currentKeyId }, "master key rotation failed, and the batches committed before the failure stay re-wrapped");
    throw error;
  }
  deps.keyRing.invalidate();

  const keyIdsInUse = masterKeyIdsInUse(await masterKeyUsage(deps.db, masterKeys));
  const retiredKeyIds =
    masterKeys.source === "file" ? await dropOldFileKeys(masterKeys, keyIdsInUse) : retiredRingKeys(masterKeys, keyIdsInUse);
  const rotation: MasterKeyRotation = {
    source: masterKeys.source,
    currentKeyId: masterKeys.currentKeyId,
    generatedKey: switched.generated,
    rewrapped,
    keyIdsInUse,
    retiredKeyIds,
  };

  await recordAuditEvents(deps, context, [
    {
      action: "master_key.rotate",
      target: rotation.currentKeyId,
      details: {
        source: rotation.source,
        master_key_id: rotation.currentKeyId,
        generated_key: rotation.generatedKey,
        rewrapped: rewrapped.map((count) => ({ master_key_id: count.masterKeyId, data_keys: count.dataKeys, signing_keys: count.signingKeys })),
        key_ids_in_use: keyIdsInUse,
        retired_key_ids: retiredKeyIds,
      },
    },
  ]);
  log.info({ masterKeyId: rotation.currentKeyId, keyIdsInUse, retiredKeyIds }, "master key rotation finished");
  return rotation;
}

/**
 * File mode, step one: makes the key file list the new key first and the old keys after
 * it, then makes this process seal under the new key. Nothing is sealed under the new key
 * before the file that contains it is on disk.
 */
async function switchToNewFileKey(masterKeys: MasterKeyRing): Promise<{ generated: boolean }> {
  const file = masterKeys.file!;
  const lines = (await readKeyFile(file)) ?? [];
  if (lines.length > 1) {
    // Promote from last to first so that the file's order becomes the ring's order.
    for (const key of decodeKeyFile(file, lines).reverse()) {
      masterKeys.promote(key);
    }
    return { generated: false };
  }

  const key = generateMasterKey();
  await replaceKeyFile(file, [key.toString("base64"), ...lines]);
  masterKeys.promote(key);
  return { generated: true };
}

/**
 * File mode, last step: rewrites the key file with the current key only, once no stored
 * key needs another one. Returns the ids removed from the file. This process keeps the old
 * keys in memory until it restarts, for requests that read a row before its re-wrap committed.
 */
async function dropOldFileKeys(masterKeys: MasterKeyRing, keyIdsInUse: (string | null)[]): Promise<string[]> {
  if (keyIdsInUse.some((id) => id !== masterKeys.currentKeyId)) {
    return [];
  }
  const file = masterKeys.file!;
  const removed = (await fileKeyIds(file)).filter((id) => id !== masterKeys.currentKeyId);
  if (removed.length > 0) {
    await replaceKeyFile(file, masterKeys.exportForKeyFile([masterKeys.currentKeyId]));
  }
  return removed;
}

async function fileKeyIds(file: string): Promise<string[]> {
  const lines = (await readKeyFile(file)) ?? [];
  return decodeKeyFile(file, lines).map((key) => masterKeyId(key));
}

function retiredRingKeys(masterKeys: MasterKeyRing, keyIdsInUse: (string | null)[]): string[] {
  return masterKeys.keyIds.filter((id) => id !== masterKeys.currentKeyId && !keyIdsInUse.includes(id));
}
