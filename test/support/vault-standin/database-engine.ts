import { randomBytes } from "node:crypto";
import type { LeaseTable } from "./lease-table.js";
import { badRequest, type HandlerResult, noHandler, notFound, type StandinClock, type StandinRequest, secondsBetween } from "./standin-types.js";

/**
 * A database secrets engine at one mount, after https://developer.hashicorp.com/vault/api-docs/secret/databases:
 * GET creds/<role> makes a user with a lease; GET roles/<role> reads a role's definition
 * ("Read role"; 404 with empty errors for an unknown role, as Vault returns for a read
 * that finds nothing); static-creds/<name> reads the current password of a static role,
 * without a lease; rotate-role/<name> sets a new one. Users are made up, since there is
 * no database behind the stand-in; tests check them here.
 */
export interface DynamicRole {
  defaultTtl: number;
  maxTtl: number;
}

interface StaticRole {
  username: string;
  password: string;
  rotationPeriod: number;
  lastRotation: Date;
}

export class DatabaseEngine {
  private readonly roles = new Map<string, DynamicRole>();
  private readonly staticRoles = new Map<string, StaticRole>();
  /** Users made for leases and not yet dropped, by username. */
  readonly liveUsers = new Map<string, string>();

  constructor(
    readonly mount: string,
    private readonly clock: StandinClock,
    private readonly leases: LeaseTable,
  ) {}

  addRole(name: string, role: DynamicRole): void {
    this.roles.set(name, role);
  }

  addStaticRole(name: string, username: string, rotationPeriod = 86_400): void {
    this.staticRoles.set(name, { username, password: newPassword(), rotationPeriod, lastRotation: this.clock.now() });
  }

  staticPassword(name: string): string | undefined {
    return this.staticRoles.get(name)?.password;
  }

  handle(request: StandinRequest, rest: string): HandlerResult {
    const [operation, name = "", ...extra] = rest.split("/");
    if (extra.length > 0) throw noHandler(request.path);
    if (operation === "creds" && name !== "" && request.method === "GET") return this.issue(name);
    if (operation === "static-creds" && name !== "" && request.method === "GET") return this.readStatic(name);
    if (operation === "rotate-role" && name !== "" && (request.method === "POST" || request.method === "PUT")) return this.rotateStaticRole(name);
    if (operation === "roles" && name === "" && request.method === "LIST") return listed([...this.roles.keys()]);
    if (operation === "roles" && name !== "" && request.method === "GET") return this.readRole(name);
    if (operation === "static-roles" && name === "" && request.method === "LIST") return listed([...this.staticRoles.keys()]);
    throw noHandler(request.path);
  }

  private issue(name: string): HandlerResult {
    const role = this.roles.get(name);
    if (!role) {
      throw badRequest(`unknown role: ${name}`);
    }
    const username = `v-broker-${name}-${randomBytes(6).toString("hex")}`;
    const password = newPassword();
    this.liveUsers.set(username, password);
    const lease = this.leases.create(`${this.mount}/creds/${name}`, role.defaultTtl, role.maxTtl, () => this.liveUsers.delete(username));
    return {
      body: {
        request_id: randomBytes(8).toString("hex"),
        lease_id: lease.id,
        renewable: true,
        lease_duration: secondsBetween(lease.issuedAt, lease.expiresAt),
        data: { username, password },
        warnings: null,
      },
    };
  }

  private readRole(name: string): HandlerResult {
    const role = this.roles.get(name);
    if (!role) {
      throw notFound();
    }
    const data = {
      db_name: "postgres",
      creation_statements: ['CREATE ROLE "{{name}}" WITH LOGIN PASSWORD \'{{password}}\' VALID UNTIL \'{{expiration}}\';'],
      revocation_statements: [],
      rollback_statements: [],
      renew_statements: [],
      default_ttl: role.defaultTtl,
      max_ttl: role.maxTtl,
      credential_type: "password",
    };
    return { body: { data } };
  }

  private readStatic(name: string): HandlerResult {
    const role = this.staticRoles.get(name);
    if (!role) {
      throw badRequest(`unknown role: ${name}`);
    }
    const data = {
      username: role.username,
      password: role.password,
      last_vault_rotation: role.lastRotation.toISOString(),
      rotation_period: role.rotationPeriod,
      ttl: Math.max(0, role.rotationPeriod - secondsBetween(role.lastRotation, this.clock.now())),
    };
    return { body: { lease_id: "", renewable: false, lease_duration: 0, data } };
  }

  /** Sets a new password for the static role, as POST rotate-role/<name> does and as Vault's own rotation_period would. */
  rotateStaticRole(name: string): HandlerResult {
    const role = this.staticRoles.get(name);
    if (!role) {
      throw badRequest(`unknown role: ${name}`);
    }
    role.password = newPassword();
    // Vault's rotation times are wall-clock times; a frozen test clock must still give each rotation its own time.
    const now = this.clock.now();
    role.lastRotation = now > role.lastRotation ? now : new Date(role.lastRotation.getTime() + 1);
    return undefined;
  }
}

function listed(keys: string[]): HandlerResult {
  if (keys.length === 0) {
    throw notFound();
  }
  return { body: { data: { keys: keys.sort() } } };
}

function newPassword(): string {
  return `A1a-${randomBytes(15).toString("base64url")}`;
}
