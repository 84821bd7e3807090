import { randomBytes } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../../../broker/db/database.js";
import { secretVersions, secrets } from "../../../broker/db/schema.js";
import { forEachConcurrently } from "./secret-catalogue.js";

/** What one baseline run of version flips achieved. */
export interface FlipRun {
  flips: number;
  concurrency: number;
  seconds: number;
  flipsPerSecond: number;
}

/** Time until a flipped secret is due again, in milliseconds: the hourly policy's max_age. */
const NEXT_ROTATION_AFTER_MS = 3600 * 1000;

/**
 * Flips every secret in `secretIds` from version 1 to version 2 with `concurrency`
 * flips in flight, each in one transaction. The transaction marks the previous version
 * deprecated (none exists yet, as in a first rotation) and version 1 previous, inserts
 * version 2 as current, and updates the secret's current version and next rotation
 * time. These are the writes of a rotation's finish step, without the rotation record,
 * the claim, the three earlier steps, the row lock on the secret or any audit event.
 *
 * The new version's sealed value and fingerprint are random text as long as those of
 * version 1, so the rows are as large as the engine's. Returns flips per second from the
 * first flip's start to the last commit.
 */
export async function flipVersions(db: Db, secretIds: string[], concurrency: number): Promise<FlipRun> {
  const sizes = await valueSizes(db, secretIds);
  const startedAt = performance.now();
  await forEachConcurrently(secretIds, concurrency, (secretId) => flipVersion(db, secretId, sizes));
  const seconds = (performance.now() - startedAt) / 1000;
  return { flips: secretIds.length, concurrency, seconds, flipsPerSecond: secretIds.length / seconds };
}

/**
 * Opens `count` connections of the pool before a timed run by running as many
 * transactions at once, so that neither the run's time nor its CPU profile includes
 * connection set-up (postgres.js opens connections when they are first needed).
 */
export async function openConnections(db: Db, count: number): Promise<void> {
  await Promise.all(
    Array.from({ length: count }, () =>
      db.transaction(async (tx) => {
        await tx.execute(sql`select 1`);
      }),
    ),
  );
}

interface ValueSizes {
  sealedValueChars: number;
  fingerprintChars: number;
}

async function flipVersion(db: Db, secretId: string, sizes: ValueSizes): Promise<void> {
  const sealedValue = randomBytes(sizes.sealedValueChars).toString("base64url").slice(0, sizes.sealedValueChars);
  const fingerprint = randomBytes(sizes.fingerprintChars).toString("hex").slice(0, sizes.fingerprintChars);

  await db.transaction(async (tx) => {
    const now = new Date();
    await tx
      .update(secretVersions)
      .set({ stage: "deprecated", retiredAt: now })
      .where(and(eq(secretVersions.secretId, secretId), eq(secretVersions.stage, "previous")));
    await tx
      .update(secretVersions)
      .set({ stage: "previous", retiredAt: now })
      .where(and(eq(secretVersions.secretId, secretId), eq(secretVersions.version, "1")));
    await tx.insert(secretVersions).values({ secretId, version: "2", stage: "current", fingerprint, sealedValue, createdAt: now, createdBy: "bench", promotedAt: now });
    await tx
      .update(secrets)
      .set({ currentVersion: "2", lastRotatedAt: now, nextRotationAt: new Date(now.getTime() + NEXT_ROTATION_AFTER_MS), updatedAt: now })
      .where(eq(secrets.id, secretId));
  });
}

/** Reads the sizes of version 1's sealed value and fingerprint, which every local secret of the benchmark shares. */
async function valueSizes(db: Db, secretIds: string[]): Promise<ValueSizes> {
  const [first] = await db
    .select({ sealedValue: secretVersions.sealedValue, fingerprint: secretVersions.fingerprint })
    .from(secretVersions)
    .where(and(eq(secretVersions.secretId, secretIds[0] ?? ""), eq(secretVersions.version, "1")));
  if (!first?.sealedValue || !first.fingerprint) {
    throw new Error(`secret ${secretIds[0]} has no version 1 with a sealed value and a fingerprint: create the secrets with the local adapter first`);
  }
  return { sealedValueChars: first.sealedValue.length, fingerprintChars: first.fingerprint.length };
}
