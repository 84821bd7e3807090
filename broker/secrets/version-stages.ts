import { and, eq } from "drizzle-orm";
import type { Executor } from "../db/database.js";
import { secretVersions } from "../db/schema.js";

/**
 * Moves a secret's versions one stage down to make room for a new current version: the
 * previous version becomes deprecated and `fromVersion` (the current one, if any)
 * previous, both retired at `now`. The caller then makes the new version current.
 */
export async function retireCurrentVersion(tx: Executor, secretId: string, fromVersion: string | null, now: Date): Promise<void> {
  await tx
    .update(secretVersions)
    .set({ stage: "deprecated", retiredAt: now })
    .where(and(eq(secretVersions.secretId, secretId), eq(secretVersions.stage, "previous")));
  if (fromVersion) {
    await tx
      .update(secretVersions)
      .set({ stage: "previous", retiredAt: now })
      .where(and(eq(secretVersions.secretId, secretId), eq(secretVersions.version, fromVersion)));
  }
}
