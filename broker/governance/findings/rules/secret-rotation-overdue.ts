import { and, eq, isNull, sql } from "drizzle-orm";
import { secrets, secretVersions } from "../../../db/schema.js";
import type { FindingRule } from "../finding-types.js";

/**
 * A secret whose current version is older than its rotation policy's `max_age`. The
 * version's age counts from its promotion to current, or from its creation when it
 * was never promoted. Secrets without a current version (dynamic secrets) are skipped.
 */
export const secretRotationOverdue: FindingRule = {
  id: "secret-rotation-overdue",
  async evaluate({ db, now }) {
    const rows = await db
      .select({ secret: secrets, version: secretVersions })
      .from(secrets)
      .innerJoin(secretVersions, and(eq(secretVersions.secretId, secrets.id), eq(secretVersions.version, secrets.currentVersion)))
      .where(and(isNull(secrets.deletedAt), sql`(${secrets.rotation} ->> 'max_age') is not null`));

    return rows.flatMap(({ secret, version }) => {
      const maxAgeSeconds = secret.rotation!.max_age!;
      const since = version.promotedAt ?? version.createdAt;
      const ageSeconds = Math.floor((now.getTime() - since.getTime()) / 1000);
      if (ageSeconds <= maxAgeSeconds) {
        return [];
      }
      return [
        {
          recordId: secret.id,
          severity: "high" as const,
          subject: { type: "secret" as const, id: secret.id },
          records: [{ type: "secret" as const, id: secret.id }],
          message:
            `secret ${secret.name} (${secret.id}) has had version ${version.version} current for ${ageSeconds} s, more than its max_age of ${maxAgeSeconds} s; ` +
            `rotate it with POST /v1/secrets/${secret.id}/rotate and check the rotation history for failures`,
        },
      ];
    });
  },
};
