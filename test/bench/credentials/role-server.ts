import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { APPLICATION_NAME as ADAPTER_APPLICATION_NAME } from "../../../adapters/postgres/connection-pools.js";
import { newPassword, newRoleName } from "../../../adapters/postgres/role-credentials.js";
import { newScramVerifier } from "../../../adapters/postgres/scram-verifier.js";

/** Role names per DROP ROLE statement when the benchmark removes the roles it created. */
const DROP_BATCH_SIZE = 500;
/** application_name of the bare-role baseline's sessions, so that they are not counted as the adapter's. */
const BARE_APPLICATION_NAME = "secrets-broker-bench";

/**
 * A database, a group role and an admin role on the PostgreSQL server of the dynamic
 * cases, all named with one random suffix, as `test/support/postgres-fixture.ts` sets them
 * up for the adapter tests. The admin is no superuser, has CREATEROLE, and has ADMIN
 * OPTION on the group role, which PostgreSQL 16 and later require for the GRANT.
 */
export interface RoleServer {
  host: string;
  port: number;
  /** Database that the admin sessions of both the broker and the baseline connect to. */
  database: string;
  /** URL of `database` with the server URL's user, for samplers of pg_stat_activity. */
  databaseUrl: string;
  admin: { username: string; password: string };
  groupRole: string;
  /** `role.name_prefix` of the broker's dynamic secret, whose roles are named `sb_<prefix>_<16 hex digits>`. */
  brokerNamePrefix: string;
  serverVersion: string;
  /** The server's password_encryption setting, for the report. */
  passwordEncryption: string;
  /** Counts the roles that the broker created for the dynamic secret and that still exist. */
  countBrokerRoles(): Promise<number>;
  /** Counts the open sessions of the broker's PostgreSQL adapter, which log in as the admin role. */
  countAdapterSessions(): Promise<number>;
  /** Opens the baseline: a pool of `connections` admin sessions that create roles straight with SQL. */
  openBareRoleCreator(connections: number, ttlSeconds: number): BareRoleCreator;
  /** Drops every role that the broker or the baseline created, and returns how many. */
  dropCreatedRoles(): Promise<number>;
  /** Drops the created roles, the admin and group roles and the database. */
  close(): Promise<void>;
}

/** The bare-role baseline on one pool of admin sessions. */
export interface BareRoleCreator {
  /** Creates one login role in the group role. Resolves true, or rejects with the server's error. */
  create(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Creates the database and roles of a RoleServer on the server of `serverUrl`, whose user
 * needs CREATEROLE and CREATEDB. On failure it removes what it had created.
 */
export async function openRoleServer(serverUrl: string): Promise<RoleServer> {
  const suffix = randomBytes(3).toString("hex");
  const database = `sbcred_${suffix}`;
  const groupRole = `sbcred_group_${suffix}`;
  const admin = { username: `sbcred_admin_${suffix}`, password: randomBytes(18).toString("base64url") };
  const brokerNamePrefix = `cb${suffix}`;
  const bareNamePrefix = `cx${suffix}`;
  const createdRolePrefixes = [`sb_${brokerNamePrefix}_`, `sb_${bareNamePrefix}_`];
  const url = new URL(serverUrl);
  const databaseUrl = new URL(serverUrl);
  databaseUrl.pathname = `/${database}`;
  const server = postgres(serverUrl, { max: 1, onnotice: () => undefined });

  const listCreatedRoles = async () => {
    const rows = await server<{ rolname: string }[]>`
      select rolname from pg_roles where starts_with(rolname, ${createdRolePrefixes[0]!}) or starts_with(rolname, ${createdRolePrefixes[1]!})`;
    return rows.map((row) => row.rolname);
  };

  const dropCreatedRoles = async () => {
    const names = await listCreatedRoles();
    for (let start = 0; start < names.length; start += DROP_BATCH_SIZE) {
      const batch = names.slice(start, start + DROP_BATCH_SIZE);
      await server.unsafe(`drop role if exists ${batch.map((name) => `"${name}"`).join(", ")}`);
    }
    return names.length;
  };

  const close = async () => {
    const failures: string[] = [];
    const attempt = async (step: string, work: () => Promise<unknown>) => {
      try {
        await work();
      } catch (error) {
        failures.push(`${step}: ${(error as Error).message}`);
      }
    };
    await attempt("drop the created roles", dropCreatedRoles);
    await attempt(`drop database ${database}`, () => server.unsafe(`drop database if exists ${database} with (force)`));
    await attempt(`end the sessions of ${admin.username}`, () => server`select pg_terminate_backend(pid, 5000) from pg_stat_activity where usename = ${admin.username}`);
    await attempt(`drop role ${admin.username}`, () => server.unsafe(`drop role if exists ${admin.username}`));
    await attempt(`drop role ${groupRole}`, () => server.unsafe(`drop role if exists ${groupRole}`));
    await server.end({ timeout: 5 });
    if (failures.length > 0) {
      throw new Error(
        `cleanup on ${url.host} failed; drop the leftovers by hand (roles starting with ${createdRolePrefixes.join(" or ")}): ${failures.join("; ")}`,
      );
    }
  };

  try {
    await server.unsafe(`create database ${database}`);
    await server.unsafe(`create role ${groupRole} nologin`);
    await server.unsafe(`create role ${admin.username} login createrole password '${admin.password}'`);
    await server.unsafe(`grant ${groupRole} to ${admin.username} with admin option`);
    const [settings] = await server<{ version: string; password_encryption: string }[]>`
      select version() as version, current_setting('password_encryption') as password_encryption`;

    return {
      host: url.hostname,
      port: Number(url.port || 5432),
      database,
      databaseUrl: databaseUrl.toString(),
      admin,
      groupRole,
      brokerNamePrefix,
      serverVersion: settings?.version ?? "unknown",
      passwordEncryption: settings?.password_encryption ?? "unknown",

      async countBrokerRoles() {
        const [row] = await server<{ roles: number }[]>`
          select count(*)::int as roles from pg_roles where starts_with(rolname, ${createdRolePrefixes[0]!})`;
        return row?.roles ?? 0;
      },

      async countAdapterSessions() {
        const [row] = await server<{ sessions: number }[]>`
          select count(*)::int as sessions from pg_stat_activity
           where usename = ${admin.username} and application_name = ${ADAPTER_APPLICATION_NAME}`;
        return row?.sessions ?? 0;
      },

      openBareRoleCreator(connections, ttlSeconds) {
        return openBareRoleCreator({ host: url.hostname, port: Number(url.port || 5432), database, admin, groupRole, bareNamePrefix, connections, ttlSeconds });
      },

      dropCreatedRoles,
      close,
    };
  } catch (error) {
    await close().catch((cleanupError: unknown) => console.error(`  ${(cleanupError as Error).message}`));
    throw error;
  }
}

/**
 * Opens the baseline's pool. Each role takes one simple-query message with two statements,
 * `CREATE ROLE ... LOGIN PASSWORD ... VALID UNTIL ...; GRANT <group> TO <role>`, which
 * PostgreSQL runs as one implicit transaction: one round trip and one commit per role. The
 * password is a SCRAM-SHA-256 secret computed here with the adapter's own function, so the
 * baseline does the same key derivation (PBKDF2, 4096 iterations) as the broker.
 */
function openBareRoleCreator(options: {
  host: string;
  port: number;
  database: string;
  admin: { username: string; password: string };
  groupRole: string;
  bareNamePrefix: string;
  connections: number;
  ttlSeconds: number;
}): BareRoleCreator {
  const sql = postgres({
    host: options.host,
    port: options.port,
    database: options.database,
    username: options.admin.username,
    password: options.admin.password,
    max: options.connections,
    prepare: false,
    fetch_types: false,
    onnotice: () => undefined,
    connection: { application_name: BARE_APPLICATION_NAME },
  });

  return {
    async create() {
      const name = newRoleName(options.bareNamePrefix);
      const verifier = await newScramVerifier(newPassword());
      const validUntil = new Date(Date.now() + options.ttlSeconds * 1000).toISOString();
      // Every literal comes from a fixed alphabet: hex names, base64 and '$:' in the verifier, an ISO date.
      await sql.unsafe(`create role "${name}" login password '${verifier}' valid until '${validUntil}'; grant "${options.groupRole}" to "${name}"`);
      return true;
    },
    close: () => sql.end({ timeout: 5 }),
  };
}
