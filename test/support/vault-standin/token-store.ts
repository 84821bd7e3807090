import { randomBytes } from "node:crypto";
import { badRequest, durationSeconds, permissionDenied, type StandinClock, type StandinRequest, secondsBetween } from "./standin-types.js";

/**
 * Tokens and AppRole logins, after https://developer.hashicorp.com/vault/api-docs/auth/token
 * (lookup-self, renew-self, revoke-self) and https://developer.hashicorp.com/vault/api-docs/auth/approle
 * (login). A token has a TTL and a max TTL; renew-self caps the increment at the max TTL with a
 * warning, as Vault does. An expired or unknown token gets 403 permission denied.
 */
export interface StandinToken {
  id: string;
  accessor: string;
  policies: string[];
  namespace: string;
  issuedAt: Date;
  /** Null for a token without expiry, such as a root token. */
  expiresAt: Date | null;
  maxExpiresAt: Date | null;
  renewable: boolean;
  ttl: number;
}

export interface AppRole {
  roleId: string;
  secretId: string;
  /** Seconds of a login token's TTL and max TTL. */
  tokenTtl: number;
  tokenMaxTtl: number;
  policies: string[];
}

const DEFAULT_APPROLE_MOUNT = "approle";

export class TokenStore {
  private readonly tokens = new Map<string, StandinToken>();
  private readonly roles = new Map<string, AppRole>();
  /** When set, renew-self returns 400 as for a token that is not renewable. */
  refuseRenewal = false;

  constructor(private readonly clock: StandinClock) {}

  /** Adds a token without expiry that carries `sudo` (like a root token) or the given policies. */
  addToken(options: { namespace?: string; policies?: string[]; ttl?: number; maxTtl?: number; renewable?: boolean } = {}): StandinToken {
    const now = this.clock.now();
    const ttl = options.ttl ?? 0;
    const token: StandinToken = {
      id: `hvs.${randomBytes(18).toString("base64url")}`,
      accessor: randomBytes(12).toString("base64url"),
      policies: options.policies ?? ["root"],
      namespace: options.namespace ?? "",
      issuedAt: now,
      expiresAt: ttl > 0 ? new Date(now.getTime() + ttl * 1000) : null,
      maxExpiresAt: options.maxTtl ? new Date(now.getTime() + options.maxTtl * 1000) : null,
      renewable: options.renewable ?? ttl > 0,
      ttl,
    };
    this.tokens.set(token.id, token);
    return token;
  }

  addAppRole(role: Partial<AppRole> & { policies?: string[] }): AppRole {
    const complete: AppRole = {
      roleId: role.roleId ?? randomBytes(8).toString("hex"),
      secretId: role.secretId ?? randomBytes(16).toString("hex"),
      tokenTtl: role.tokenTtl ?? 3600,
      tokenMaxTtl: role.tokenMaxTtl ?? 4 * 3600,
      policies: role.policies ?? ["broker"],
    };
    this.roles.set(complete.roleId, complete);
    return complete;
  }

  /** Returns the live token with this id, or throws 403 as Vault does for a missing or expired token. */
  authenticate(id: string | undefined, namespace: string): StandinToken {
    const token = id === undefined ? undefined : this.tokens.get(id);
    if (!token || token.namespace !== namespace || this.isExpired(token)) {
      throw permissionDenied();
    }
    return token;
  }

  /** Ends a token now, as if its TTL ran out. */
  expire(id: string): void {
    const token = this.tokens.get(id);
    if (token) {
      token.expiresAt = new Date(this.clock.now().getTime() - 1000);
    }
  }

  liveTokens(): StandinToken[] {
    return [...this.tokens.values()].filter((token) => !this.isExpired(token));
  }

  /** POST auth/<mount>/login: 400 "invalid role or secret ID" for wrong credentials. */
  login(request: StandinRequest): { status: number; body: unknown } {
    const role = this.roles.get(String(request.body["role_id"] ?? ""));
    if (!role || role.secretId !== request.body["secret_id"]) {
      throw badRequest("invalid role or secret ID");
    }
    const token = this.addToken({ namespace: request.namespace, policies: role.policies, ttl: role.tokenTtl, maxTtl: role.tokenMaxTtl, renewable: true });
    return { status: 200, body: authBody(token, this.remaining(token), []) };
  }

  /** GET auth/token/lookup-self. */
  lookupSelf(token: StandinToken): { status: number; body: unknown } {
    const data = {
      id: token.id,
      accessor: token.accessor,
      policies: token.policies,
      creation_ttl: token.ttl,
      expire_time: token.expiresAt?.toISOString() ?? null,
      explicit_max_ttl: 0,
      renewable: token.renewable,
      ttl: this.remaining(token),
      namespace_path: token.namespace === "" ? "" : `${token.namespace}/`,
    };
    return { status: 200, body: { data, auth: null, lease_duration: 0, renewable: false, warnings: null } };
  }

  /** POST auth/token/renew-self: the increment counts from now and is capped at the token's max TTL. */
  renewSelf(token: StandinToken, request: StandinRequest): { status: number; body: unknown } {
    if (this.refuseRenewal || !token.renewable || token.expiresAt === null) {
      throw badRequest("lease is not renewable");
    }
    const now = this.clock.now();
    const requested = durationSeconds(request.body["increment"]) ?? token.ttl;
    const untilMax = token.maxExpiresAt ? secondsBetween(now, token.maxExpiresAt) : requested;
    if (untilMax === 0) {
      throw badRequest("past the max TTL, cannot renew");
    }
    const granted = Math.min(requested, untilMax);
    token.expiresAt = new Date(now.getTime() + granted * 1000);
    const warnings = granted < requested ? [`TTL of "${requested}s" exceeded the effective max_ttl of "${granted}s"; TTL value is capped accordingly`] : [];
    return { status: 200, body: authBody(token, granted, warnings) };
  }

  /** POST auth/token/revoke-self. */
  revokeSelf(token: StandinToken): undefined {
    this.tokens.delete(token.id);
    return undefined;
  }

  isApproleLogin(path: string): boolean {
    return path === `auth/${DEFAULT_APPROLE_MOUNT}/login` || /^auth\/[^/]+\/login$/.test(path);
  }

  private remaining(token: StandinToken): number {
    return token.expiresAt === null ? 0 : secondsBetween(this.clock.now(), token.expiresAt);
  }

  private isExpired(token: StandinToken): boolean {
    return token.expiresAt !== null && token.expiresAt <= this.clock.now();
  }
}

function authBody(token: StandinToken, leaseDuration: number, warnings: string[]): unknown {
  return {
    request_id: randomBytes(8).toString("hex"),
    lease_id: "",
    renewable: false,
    lease_duration: 0,
    data: null,
    warnings: warnings.length > 0 ? warnings : null,
    auth: {
      client_token: token.id,
      accessor: token.accessor,
      policies: token.policies,
      token_policies: token.policies,
      lease_duration: leaseDuration,
      renewable: token.renewable,
    },
  };
}
