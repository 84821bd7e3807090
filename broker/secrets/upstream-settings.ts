import { and, eq, isNull } from "drizzle-orm";
import type { SecretKind } from "../../adapters/contract.js";
import { secrets } from "../db/schema.js";
import type { Executor } from "../db/database.js";
import type { BrokerDeps } from "../deps.js";
import { Conflict, ValidationFailed } from "../errors.js";
import { localSecretReader } from "./local-secret-reader.js";
import { type SecretRow, toSecretRef } from "./secret-views.js";

/**
 * Returns the settings of a secret being created with its upstream reference in the
 * adapter's canonical form (an AWS ARN for a name), or as they are when the adapter has
 * none. Runs outside any transaction, as every adapter call does.
 */
export async function resolveUpstreamSettings(deps: BrokerDeps, row: SecretRow): Promise<Record<string, unknown>> {
  const adapter = deps.adapters.get(row.adapter);
  if (adapter.resolveSettings === undefined || row.kind !== "static") {
    return row.settings;
  }
  return deps.adapters.call(row.adapter, toSecretRef(row), "resolve_settings", localSecretReader(deps), (resolving, call) => resolving.resolveSettings!(call));
}

/**
 * Refuses a second static secret for the upstream secret an existing one already points
 * at, and a dynamic secret on an upstream that another dynamic secret claims alone (or
 * that this one claims while others use it). `db` may be the caller's transaction.
 */
export async function ensureUpstreamFree(
  deps: BrokerDeps,
  adapterName: string,
  kind: SecretKind,
  settings: Record<string, unknown>,
  options: { db?: Executor; exceptId?: string } = {},
): Promise<void> {
  const adapter = deps.adapters.get(adapterName);
  const key = adapter.upstreamKey?.(settings) ?? null;
  if (key === null) {
    return;
  }
  const others = await (options.db ?? deps.db)
    .select({ id: secrets.id, name: secrets.name, settings: secrets.settings })
    .from(secrets)
    .where(and(eq(secrets.adapter, adapterName), eq(secrets.kind, kind), isNull(secrets.deletedAt)));
  const sharing = others.filter((other) => other.id !== options.exceptId && adapter.upstreamKey!(other.settings as Record<string, unknown>) === key);
  if (kind === "static" && sharing[0]) {
    const same = sharing[0];
    throw new Conflict(`secret '${same.name}' (${same.id}) already refers to ${key}; use that secret, or delete it first, so that one broker secret records that upstream's versions`);
  }
  const claims = (candidate: Record<string, unknown>) => adapter.claimsUpstream?.(candidate) ?? false;
  const conflicting = claims(settings) ? sharing[0] : sharing.find((other) => claims(other.settings as Record<string, unknown>));
  if (kind === "dynamic" && conflicting) {
    throw new Conflict(
      `secret '${conflicting.name}' (${conflicting.id}) also issues credentials from ${key}, and one of the two claims it alone (dedicated_role), ` +
        "so deleting it would end the other's credentials upstream; use that secret, or turn dedicated_role off on both",
    );
  }
}

/**
 * Rejects new settings that point at another upstream than the stored ones, because a
 * static secret's versions were recorded from that upstream and a dynamic secret's leases
 * must be renewed and revoked where they were issued.
 */
export function ensureSameUpstream(deps: BrokerDeps, current: SecretRow, settings: Record<string, unknown>): void {
  if (("database" in current.settings) !== ("database" in settings)) {
    // The database block decides whether a rotation changes a login role's password, and
    // registration checked that role: settings without it would rotate the value alone.
    const change = "database" in settings ? "add a database block to" : "remove the database block from";
    throw new ValidationFailed([
      { name: "settings.database", reason: `cannot ${change} secret ${current.name}'s settings; send the whole settings object with its database block as stored, or register a new secret` },
    ]);
  }
  const adapter = deps.adapters.get(current.adapter);
  if (adapter.upstreamKey === undefined) {
    return;
  }
  const before = adapter.upstreamKey(current.settings);
  const after = adapter.upstreamKey(settings);
  if (before !== after) {
    throw new ValidationFailed([
      {
        name: "settings",
        reason:
          current.kind === "static"
            ? `refer to ${after ?? "no upstream secret"}, but secret ${current.name} records the versions of ${before}; keep that reference, or register a new secret for the other upstream`
            : `refer to ${after ?? "no upstream"}, but secret ${current.name}'s leases were issued from ${before} and are renewed and revoked there; keep that reference, or register a new secret for the other upstream`,
      },
    ]);
  }
}
