import type { SecretRef, VersionRef } from "../../adapters/contract.js";
import type { secretVersions, secrets } from "../db/schema.js";
import type { SecretVersionView, SecretView } from "./secret-schemas.js";

export type SecretRow = typeof secrets.$inferSelect;
export type VersionRow = typeof secretVersions.$inferSelect;

/** Converts a secret row to the reference an adapter receives. */
export function toSecretRef(row: SecretRow): SecretRef {
  return { id: row.id, name: row.name, kind: row.kind as SecretRef["kind"], settings: row.settings, generate: row.generate ?? null };
}

export function toVersionRef(row: VersionRow): VersionRef {
  return { version: row.version, sealedValue: row.sealedValue };
}

export function toSecretView(row: SecretRow): SecretView {
  return {
    id: row.id,
    name: row.name,
    adapter: row.adapter,
    kind: row.kind as SecretView["kind"],
    owner: row.owner,
    description: row.description,
    settings: row.settings,
    generate: row.generate ?? null,
    rotation: (row.rotation as Record<string, unknown> | null) ?? null,
    default_ttl: row.defaultTtl,
    max_ttl: row.maxTtl,
    current_version: row.currentVersion,
    next_rotation_at: row.nextRotationAt?.toISOString() ?? null,
    last_rotated_at: row.lastRotatedAt?.toISOString() ?? null,
    external_rotation: row.externalRotation ?? null,
    created_at: row.createdAt.toISOString(),
    created_by: row.createdBy,
    updated_at: row.updatedAt.toISOString(),
    deleted_at: row.deletedAt?.toISOString() ?? null,
  };
}

/** Converts a version row to its API view, which never includes the sealed value. */
export function toVersionView(row: VersionRow): SecretVersionView {
  return {
    version: row.version,
    stage: row.stage as SecretVersionView["stage"],
    fingerprint: row.fingerprint,
    rotation_id: row.rotationId,
    created_at: row.createdAt.toISOString(),
    created_by: row.createdBy,
    promoted_at: row.promotedAt?.toISOString() ?? null,
    retired_at: row.retiredAt?.toISOString() ?? null,
  };
}
