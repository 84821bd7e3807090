import { sql } from "drizzle-orm";
import type { Executor } from "../db/database.js";
import { dataKeys, signingKeys } from "../db/schema.js";
import { EnvelopeError } from "./envelope.js";
import type { MasterKeyRing } from "./master-key-ring.js";
import { signingKeySealContext } from "./signing-keys.js";

/** How many stored keys one master key wraps. */
export interface MasterKeyUsage {
  /** Null for `v1` signing keys that none of the loaded master keys opens, so their master key is unknown. */
  masterKeyId: string | null;
  current: boolean;
  /** Whether this process loaded the master key, from BROKER_MASTER_KEY or the key file. */
  loaded: boolean;
  dataKeys: number;
  signingKeys: number;
}

/**
 * Counts the data keys and signing keys each master key wraps, with a row for every
 * loaded key even when it wraps nothing, current key first. Data keys carry their master
 * key id in a column, and signing keys name it in their envelope. A `v1` envelope names
 * no key, so it is attributed by trying the loaded keys.
 */
export async function masterKeyUsage(db: Executor, masterKeys: MasterKeyRing): Promise<MasterKeyUsage[]> {
  const counts = new Map<string | null, { dataKeys: number; signingKeys: number }>(masterKeys.keyIds.map((id) => [id, { dataKeys: 0, signingKeys: 0 }]));
  const countFor = (id: string | null) => {
    let entry = counts.get(id);
    if (!entry) {
      entry = { dataKeys: 0, signingKeys: 0 };
      counts.set(id, entry);
    }
    return entry;
  };

  const dataKeyCounts = await db
    .select({ masterKeyId: dataKeys.masterKeyId, count: sql<number>`count(*)::int` })
    .from(dataKeys)
    .groupBy(dataKeys.masterKeyId);
  for (const row of dataKeyCounts) {
    countFor(row.masterKeyId).dataKeys += row.count;
  }

  const signingKeyRows = await db.select({ kid: signingKeys.kid, ciphertext: signingKeys.privateKeyCiphertext }).from(signingKeys);
  for (const row of signingKeyRows) {
    countFor(signingKeyMasterKeyId(masterKeys, row.kid, row.ciphertext)).signingKeys += 1;
  }

  return [...counts.entries()].map(([masterKeyId, count]) => ({
    masterKeyId,
    current: masterKeyId === masterKeys.currentKeyId,
    loaded: masterKeyId !== null && masterKeys.has(masterKeyId),
    ...count,
  }));
}

/** Ids of master keys that still wrap at least one stored key; null stands for an unknown key. */
export function masterKeyIdsInUse(usage: MasterKeyUsage[]): (string | null)[] {
  return usage.filter((entry) => entry.dataKeys + entry.signingKeys > 0).map((entry) => entry.masterKeyId);
}

/**
 * Describes the stored keys that this process cannot open because their master key is
 * missing from the ring, or returns null when the ring contains every master key in use.
 */
export function describeMissingMasterKeys(usage: MasterKeyUsage[], masterKeys: MasterKeyRing): string | null {
  const missing = usage.filter((entry) => !entry.loaded && entry.dataKeys + entry.signingKeys > 0);
  if (missing.length === 0) {
    return null;
  }
  const parts = missing.map((entry) => {
    const counted = [plural(entry.dataKeys, "data key"), plural(entry.signingKeys, "signing key")].filter((part) => part !== null);
    const verb = entry.dataKeys + entry.signingKeys === 1 ? "is" : "are";
    return entry.masterKeyId === null
      ? `${counted.join(" and ")} ${verb} sealed in a v1 or damaged envelope that none of its keys opens`
      : `${counted.join(" and ")} ${verb} wrapped by master key ${entry.masterKeyId}, which it does not contain`;
  });
  return `${parts.join("; ")} (${masterKeys.origin} contains ${masterKeys.keyIds.join(", ")})`;
}

function signingKeyMasterKeyId(masterKeys: MasterKeyRing, kid: string, ciphertext: string): string | null {
  try {
    return masterKeys.keyIdOf(ciphertext) ?? masterKeys.openWithKeyId(ciphertext, signingKeySealContext(kid)).keyId;
  } catch (error) {
    if (error instanceof EnvelopeError) {
      return null;
    }
    throw error;
  }
}

/** Returns "1 data key" or "2 data keys", or null for none. */
function plural(count: number, noun: string): string | null {
  if (count === 0) {
    return null;
  }
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
