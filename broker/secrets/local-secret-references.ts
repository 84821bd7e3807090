import { and, eq, inArray, isNull } from "drizzle-orm";
import type { Executor } from "../db/database.js";
import { secrets } from "../db/schema.js";
import { type InvalidParam, ValidationFailed } from "../errors.js";

/** Settings name a credential kept by the local adapter in a field whose name ends with this (`password_secret`, `secret_id_secret`). */
const LOCAL_SECRET_SUFFIX = "_secret";
const LOCAL_ADAPTER = "local";

/** One `*_secret` field of a secret's settings: its dotted path under `settings` and the local secret it names. */
interface LocalSecretReference {
  path: string;
  name: string;
}

/**
 * Rejects settings whose `*_secret` fields name no live static secret of the local
 * adapter, with a 400 naming each such field. The broker reads that credential for every
 * upstream call, so a secret that names a missing one could never be used. Deleting a
 * local secret that settings name is refused for the same reason.
 */
export async function ensureLocalSecretsExist(db: Executor, settings: Record<string, unknown>): Promise<void> {
  const references = localSecretReferences(settings, "");
  if (references.length === 0) {
    return;
  }
  const names = [...new Set(references.map((reference) => reference.name))];
  const found = await db
    .select({ name: secrets.name })
    .from(secrets)
    .where(and(inArray(secrets.name, names), eq(secrets.adapter, LOCAL_ADAPTER), eq(secrets.kind, "static"), isNull(secrets.deletedAt)));
  const existing = new Set(found.map((row) => row.name));

  const missing: InvalidParam[] = references
    .filter((reference) => !existing.has(reference.name))
    .map((reference) => ({
      name: `settings.${reference.path}`,
      reason: `names local secret '${reference.name}', which does not exist; create it first with adapter local (secrets-broker secret create --name ${reference.name} --value-file FILE)`,
    }));
  if (missing.length > 0) {
    throw new ValidationFailed(missing);
  }
}

function localSecretReferences(value: unknown, prefix: string): LocalSecretReference[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return [];
  }
  return Object.entries(value).flatMap(([key, field]) => {
    const path = prefix === "" ? key : `${prefix}.${key}`;
    if (key.endsWith(LOCAL_SECRET_SUFFIX) && typeof field === "string") {
      return [{ path, name: field }];
    }
    return localSecretReferences(field, path);
  });
}
