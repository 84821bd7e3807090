import { eq } from "drizzle-orm";
import type { Executor } from "../db/database.js";
import { grants } from "../db/schema.js";
import { InvalidState } from "../errors.js";
import { type GrantRow, grantStatus } from "../grants/grant-types.js";
import type { ServiceAccountRow } from "../register/service-accounts-service.js";
import type { LeaseRow } from "./lease-types.js";

/**
 * Refuses to renew an access-token lease whose audience or scopes the account no longer
 * allows. A renewal signs a new token with them, so renewing would undo a narrowing of the
 * account's allowed audiences or scopes, or the end of its audience grant. The rules are
 * those of issuance. The broker's own issuer is always an allowed audience, and another
 * audience needs the account's allowed audiences or a live audience grant. The scopes must
 * be within the grant's scopes when it lists some, else within the account's.
 */
export async function checkTokenLeaseStillAllowed(
  db: Executor,
  issuer: string,
  account: ServiceAccountRow,
  lease: LeaseRow,
  now: Date,
): Promise<void> {
  const grant = lease.grantId ? await liveGrant(db, lease, now) : undefined;
  const audience = lease.audience ?? issuer;
  if (audience !== issuer && !grant && !account.allowedAudiences.includes(audience)) {
    throw new InvalidState(
      `lease ${lease.id} is for audience ${audience}, which service account ${account.id} is no longer allowed; request a new token for an allowed audience`,
    );
  }

  const allowed = grant && grant.scopes.length > 0 ? grant.scopes : account.allowedScopes;
  const disallowed = lease.scopes.filter((scope) => !allowed.includes(scope));
  if (disallowed.length > 0) {
    throw new InvalidState(
      `lease ${lease.id} carries scope ${disallowed.join(" ")}, which service account ${account.id} is no longer allowed; request a new token with the allowed scopes`,
    );
  }
}

async function liveGrant(db: Executor, lease: LeaseRow, now: Date): Promise<GrantRow> {
  const [grant] = await db.select().from(grants).where(eq(grants.id, lease.grantId!));
  const status = grant ? grantStatus(grant, now) : "revoked";
  if (status !== "active") {
    throw new InvalidState(`lease ${lease.id} was issued under audience grant ${lease.grantId}, which is ${status}; request a new token`);
  }
  return grant!;
}
