import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import postgres from "postgres";
import type { AdapterCall, SecretData, SecretKind } from "../../adapters/contract.js";

/** The PostgreSQL server the adapter tests run against; the tests skip when it is unset. */
export const TEST_POSTGRES_URL = process.env["TEST_POSTGRES_URL"] ?? process.env["DATABASE_URL"];

/** The local secret that stores the admin password in the settings the fixture builds. */
export const ADMIN_PASSWORD_SECRET = "db/orders-admin";
const ROWS_IN_ORDERS = 3;

/**
 * A scratch database on the test server with the roles a dynamic PostgreSQL secret
 * needs: a group role that may read `orders`, a group role that may create tables in
 * schema `scratch`, and a non-superuser admin with CREATEROLE and ADMIN OPTION on both,
 * as a realistic broker admin on PostgreSQL 15 and later looks. Static secrets rotate
 * roles made by `createRole`. `close()` drops all of it, dynamic roles left behind by a
 * failed test included.
 */
export interface PostgresFixture {
  host: string;
  port: number;
  database: string;
  /** Superuser client on the scratch database. */
  sql: postgres.Sql;
  admin: { username: string; password: string };
  readerRole: string;
  writerRole: string;
  /** Unique `role.name_prefix`, so that `dynamicRoles()` finds only this fixture's roles. */
  namePrefix: string;
  readonly rowsInOrders: number;
  /** Adapter settings for this database; `overrides` replace `connection` and `role` fields. */
  settings(overrides?: { connection?: Record<string, unknown>; role?: Record<string, unknown> }): Record<string, unknown>;
  /** Settings of a static secret that rotates the password of `roleName`; `overrides` replace `connection` fields. */
  staticSettings(roleName: string, overrides?: { connection?: Record<string, unknown> }): Record<string, unknown>;
  /**
   * Builds an AdapterCall for `settings` whose local secret store contains the admin
   * password. The secret is dynamic unless `options.kind` sets another kind, and each kind
   * has its own secret id.
   */
  call(settings: Record<string, unknown>, options?: CallOptions): AdapterCall;
  /** Creates a role with `password` and `attributes` (LOGIN by default), which `close()` drops. */
  createRole(password: string, attributes?: string): Promise<string>;
  /** Opens a client that logs in as `username`, to the scratch database by default; `close()` ends it. */
  connectAs(username: string, password: string, database?: string): postgres.Sql;
  /** Logs in as `username` once and returns "ok", or the SQLSTATE of the failed login (28P01: wrong password). */
  loginCode(username: string, password: string): Promise<string>;
  /** Opens a superuser client on another database of the server; `close()` ends it. */
  connectTo(database: string): postgres.Sql;
  /** Roles that start with this fixture's name prefix. */
  dynamicRoles(): Promise<string[]>;
  role(name: string): Promise<RoleRow | undefined>;
  close(): Promise<void>;
}

export interface CallOptions {
  kind?: SecretKind;
  signal?: AbortSignal;
  readLocalSecret?: (name: string) => Promise<SecretData>;
}

export interface RoleRow {
  rolname: string;
  rolcanlogin: boolean;
  rolvaliduntil: Date | null;
  rolconnlimit: number;
  rolpassword: string | null;
  description: string | null;
  member_of: string[];
}

export async function createPostgresFixture(serverUrl: string): Promise<PostgresFixture> {
  const suffix = randomBytes(4).toString("hex");
  const database = `sbt_pg_${suffix}`;
  const readerRole = `sbt_readers_${suffix}`;
  const writerRole = `sbt_writers_${suffix}`;
  const admin = { username: `sbt_admin_${suffix}`, password: randomBytes(18).toString("base64url") };
  const namePrefix = `t${suffix}`;
  const url = new URL(serverUrl);
  const host = url.hostname;
  const port = Number(url.port || 5432);

  const server = postgres(serverUrl, { max: 1, onnotice: () => undefined });
  await server.unsafe(`create database ${database}`);
  await server.unsafe(`create role ${readerRole} nologin`);
  await server.unsafe(`create role ${writerRole} nologin`);
  await server.unsafe(`create role ${admin.username} login createrole password '${admin.password}'`);
  await server.unsafe(`grant ${readerRole}, ${writerRole} to ${admin.username} with admin option`);

  const scratchUrl = new URL(serverUrl);
  scratchUrl.pathname = `/${database}`;
  const sql = postgres(scratchUrl.toString(), { max: 2, onnotice: () => undefined });
  await sql.unsafe(`create table orders (id integer primary key, item text not null)`);
  await sql.unsafe(`insert into orders select n, 'item ' || n from generate_series(1, ${ROWS_IN_ORDERS}) as n`);
  await sql.unsafe(`grant select on orders to ${readerRole}`);
  await sql.unsafe(`create schema scratch`);
  await sql.unsafe(`grant usage, create on schema scratch to ${writerRole}`);

  const clients: postgres.Sql[] = [];
  const createdRoles: string[] = [];

  const fixture: PostgresFixture = {
    host,
    port,
    database,
    sql,
    admin,
    readerRole,
    writerRole,
    namePrefix,
    rowsInOrders: ROWS_IN_ORDERS,

    settings(overrides = {}) {
      return {
        connection: {
          host,
          port,
          database,
          username: admin.username,
          password_secret: ADMIN_PASSWORD_SECRET,
          ssl: "disable",
          ...overrides.connection,
        },
        role: { member_of: [readerRole], name_prefix: namePrefix, ...overrides.role },
      };
    },

    staticSettings(roleName, overrides = {}) {
      return {
        connection: {
          host,
          port,
          database,
          username: admin.username,
          password_secret: ADMIN_PASSWORD_SECRET,
          ssl: "disable",
          ...overrides.connection,
        },
        role: { name: roleName },
      };
    },

    call(settings, options = {}) {
      const kind = options.kind ?? "dynamic";
      return {
        secret: { id: kind === "dynamic" ? `sec_${suffix}` : `sec_${suffix}_${kind}`, name: `db/orders-${kind}`, kind, settings, generate: null },
        signal: options.signal ?? new AbortController().signal,
        readLocalSecret:
          options.readLocalSecret ??
          (async (name) => {
            if (name !== ADMIN_PASSWORD_SECRET) {
              throw new Error(`no local secret ${name}`);
            }
            return { password: admin.password };
          }),
      };
    },

    async createRole(password, attributes = "login") {
      const name = `sbt_app_${suffix}_${createdRoles.length}`;
      createdRoles.push(name);
      await server.unsafe(`create role ${name} ${attributes} password '${password.replaceAll("'", "''")}'`);
      return name;
    },

    async loginCode(username, password) {
      const client = this.connectAs(username, password);
      try {
        await client`select 1`;
        return "ok";
      } catch (error) {
        return (error as postgres.PostgresError).code ?? "error";
      } finally {
        await client.end({ timeout: 1 });
      }
    },

    connectAs(username, password, otherDatabase = database) {
      const client = postgres({
        host,
        port,
        database: otherDatabase,
        username,
        password,
        max: 1,
        connect_timeout: 5,
        onnotice: () => undefined,
      });
      clients.push(client);
      return client;
    },

    connectTo(otherDatabase) {
      const otherUrl = new URL(serverUrl);
      otherUrl.pathname = `/${otherDatabase}`;
      const client = postgres(otherUrl.toString(), { max: 1, onnotice: () => undefined });
      clients.push(client);
      return client;
    },

    async dynamicRoles() {
      const rows = await sql<{ rolname: string }[]>`
        select rolname from pg_roles where starts_with(rolname, ${`sb_${namePrefix}_`}) order by rolname`;
      return rows.map((row) => row.rolname);
    },

    async role(name) {
      const rows = await sql<RoleRow[]>`
        select a.rolname, a.rolcanlogin, a.rolvaliduntil, a.rolconnlimit, a.rolpassword,
               shobj_description(a.oid, 'pg_authid') as description,
               coalesce(array(select g.rolname::text from pg_auth_members m join pg_roles g on g.oid = m.roleid
                              where m.member = a.oid order by 1), '{}') as member_of
        from pg_authid a where a.rolname = ${name}`;
      return rows[0];
    },

    async close() {
      await Promise.all(clients.map((client) => client.end({ timeout: 1 })));
      const leftovers = await fixture.dynamicRoles();
      await sql.end();
      await server.unsafe(`drop database if exists ${database} with (force)`);
      for (const role of [...leftovers, ...createdRoles, readerRole, writerRole, admin.username]) {
        await server`select pg_terminate_backend(pid, 5000) from pg_stat_activity where usename = ${role}`;
        await server.unsafe(`drop role if exists "${role}"`);
      }
      await server.end();
    },
  };
  return fixture;
}

/**
 * Returns whether the server checks passwords on TCP logins: false when any host line of
 * pg_hba.conf uses trust. With trust, PostgreSQL checks neither passwords nor
 * VALID UNTIL, which it only evaluates during password authentication. Needs a
 * superuser or pg_read_all_settings to read pg_hba_file_rules.
 */
export async function serverChecksPasswords(sql: postgres.Sql): Promise<boolean> {
  const rows = await sql<{ trusting: number; total: number }[]>`
    select count(*) filter (where auth_method = 'trust')::int as trusting, count(*)::int as total
    from pg_hba_file_rules where type like 'host%'`;
  const row = rows[0];
  return row !== undefined && row.total > 0 && row.trusting === 0;
}

/** Starts a TCP server on loopback that accepts connections and never sends a byte, as a hung server does. */
export async function startSilentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const socket of sockets) {
        socket.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
