import { randomBytes } from "node:crypto";
import { badRequest, durationSeconds, type HandlerResult, type StandinClock, type StandinRequest, secondsBetween, VaultReply } from "./standin-types.js";

/**
 * Leases of dynamic secrets, after https://developer.hashicorp.com/vault/api-docs/system/leases.
 * A lease id is the request path, "/" and 24 random base62 characters. Renew counts the
 * increment from now and caps it at the lease's max TTL with a warning; at the max TTL it
 * refuses with 400. Revoke returns 202 unless `sync` is true (then 204), and an unknown
 * lease is not an error. revoke-prefix needs sudo.
 */
export interface StandinLease {
  id: string;
  issuedAt: Date;
  expiresAt: Date;
  maxExpiresAt: Date;
  renewable: boolean;
  lastRenewal: Date | null;
  /** Called once when the lease is revoked, to drop the credential behind it. */
  onRevoke: () => void;
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const LEASE_SUFFIX_LENGTH = 24;

export class LeaseTable {
  private readonly leases = new Map<string, StandinLease>();
  /** When set, revocations fail with 500 as when the backend cannot drop the credential. */
  failRevocation = false;
  readonly revoked: string[] = [];

  constructor(private readonly clock: StandinClock) {}

  create(path: string, ttl: number, maxTtl: number, onRevoke: () => void): StandinLease {
    const now = this.clock.now();
    const lease: StandinLease = {
      id: `${path}/${randomBase62(LEASE_SUFFIX_LENGTH)}`,
      issuedAt: now,
      expiresAt: new Date(now.getTime() + Math.min(ttl, maxTtl) * 1000),
      maxExpiresAt: new Date(now.getTime() + maxTtl * 1000),
      renewable: true,
      lastRenewal: null,
      onRevoke,
    };
    this.leases.set(lease.id, lease);
    return lease;
  }

  get(id: string): StandinLease | undefined {
    return this.leases.get(id);
  }

  /** PUT sys/leases/lookup: unknown lease is 400 "invalid lease". */
  lookup(request: StandinRequest): HandlerResult {
    const lease = this.leases.get(String(request.body["lease_id"] ?? ""));
    if (!lease) {
      throw badRequest("invalid lease");
    }
    const data = {
      id: lease.id,
      issue_time: lease.issuedAt.toISOString(),
      expire_time: lease.expiresAt.toISOString(),
      last_renewal: lease.lastRenewal?.toISOString() ?? null,
      renewable: lease.renewable,
      ttl: secondsBetween(this.clock.now(), lease.expiresAt),
    };
    return { body: { data } };
  }

  /** PUT sys/leases/renew. */
  renew(request: StandinRequest): HandlerResult {
    const lease = this.leases.get(String(request.body["lease_id"] ?? ""));
    const now = this.clock.now();
    if (!lease) {
      throw badRequest("lease not found");
    }
    if (lease.expiresAt <= now) {
      throw badRequest("lease expired");
    }
    if (!lease.renewable) {
      throw badRequest("lease is not renewable");
    }
    const remaining = secondsBetween(now, lease.maxExpiresAt);
    if (remaining === 0) {
      throw badRequest("past the max TTL, cannot renew");
    }
    const requested = durationSeconds(request.body["increment"]) ?? secondsBetween(lease.issuedAt, lease.expiresAt);
    const granted = Math.min(requested, remaining);
    lease.expiresAt = new Date(now.getTime() + granted * 1000);
    lease.lastRenewal = now;
    const warnings = granted < requested ? [`TTL of "${requested}s" exceeded the effective max_ttl of "${granted}s"; TTL value is capped accordingly`] : null;
    return { body: { request_id: randomBase62(8), lease_id: lease.id, renewable: true, lease_duration: granted, data: null, warnings } };
  }

  /** PUT sys/leases/revoke: 204 with sync true, 202 without. */
  revoke(request: StandinRequest): HandlerResult {
    const id = String(request.body["lease_id"] ?? "");
    if (id === "") {
      throw badRequest("lease_id is required");
    }
    this.revokeIds([id]);
    return request.body["sync"] === true ? undefined : { status: 202 };
  }

  /**
   * POST sys/leases/revoke-prefix/<prefix>: every lease whose id starts with the prefix,
   * with no body but the optional `sync`; 204 with sync true, 202 without. With
   * `failRevocation`, nothing is revoked and the reply is 500, as when the backend fails.
   */
  revokePrefix(prefix: string, request: StandinRequest): HandlerResult {
    this.revokeIds([...this.leases.keys()].filter((id) => id.startsWith(prefix)));
    return request.body["sync"] === true ? undefined : { status: 202 };
  }

  private revokeIds(ids: string[]): void {
    if (this.failRevocation && ids.some((id) => this.leases.has(id))) {
      throw new VaultReply(500, ["1 error occurred:\n\t* failed to revoke entry: the database did not answer\n\n"]);
    }
    for (const id of ids) {
      const lease = this.leases.get(id);
      if (lease) {
        this.leases.delete(id);
        lease.onRevoke();
        this.revoked.push(id);
      }
    }
  }
}

function randomBase62(length: number): string {
  const bytes = randomBytes(length);
  return [...bytes].map((byte) => BASE62[byte % BASE62.length]).join("");
}
