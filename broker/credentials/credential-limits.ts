import { GrantExpired } from "../errors.js";
import type { GrantRow } from "../grants/grant-types.js";
import type { LeaseRow } from "../leases/lease-types.js";
import type { ServiceAccountRow } from "../register/service-accounts-service.js";
import type { SecretRow } from "../secrets/secret-views.js";

/** The TTL and expiry times of a new credential lease. */
export interface CredentialLimits {
  ttl: number;
  expiresAt: Date;
  maxExpiresAt: Date;
}

/**
 * Computes the TTL and expiry times of a new credential lease. The lease ends no later
 * than the secret's max TTL, the grant's `not_after`, the account's expiry and the
 * parent access-token lease's max expiry. Its first TTL is the requested one (the
 * secret's default TTL without a request), capped by the secret's and the grant's max
 * TTL, the account's max credential TTL and that end.
 */
export function credentialLimits(
  request: { ttl: number | undefined },
  secret: SecretRow,
  grant: GrantRow,
  account: ServiceAccountRow,
  parent: LeaseRow,
  now: Date,
): CredentialLimits {
  const ends = [now.getTime() + secret.maxTtl * 1000, account.expiresAt.getTime(), parent.maxExpiresAt.getTime()];
  if (grant.notAfter) ends.push(grant.notAfter.getTime());
  const maxExpiresAt = new Date(Math.min(...ends));

  const remaining = Math.floor((maxExpiresAt.getTime() - now.getTime()) / 1000);
  const caps = [request.ttl ?? secret.defaultTtl, secret.maxTtl, account.maxTokenTtl, remaining];
  if (grant.maxTtl !== null) caps.push(grant.maxTtl);
  const ttl = Math.min(...caps);
  if (ttl < 1) {
    throw new GrantExpired(`no time is left before grant ${grant.id}, service account ${account.id} or access-token lease ${parent.id} ends`);
  }
  return { ttl, expiresAt: new Date(now.getTime() + ttl * 1000), maxExpiresAt };
}
