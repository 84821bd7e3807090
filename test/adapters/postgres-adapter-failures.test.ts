import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AdapterCall, SecretData } from "../../adapters/contract.js";
import { InvalidAdapterSettings, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable } from "../../adapters/errors.js";
import { PostgresAdapter } from "../../adapters/postgres/postgres-adapter.js";
import { createPostgresFixture, type PostgresFixture, serverChecksPasswords, startSilentServer, TEST_POSTGRES_URL } from "../support/postgres-fixture.js";

const HOUR_MS = 3600_000;
/** How long a test waits for a statement to start waiting on a lock before it gives up. */
const LOCK_WAIT_LIMIT_MS = 5000;

describe.skipIf(!TEST_POSTGRES_URL)("postgres adapter failures", () => {
  let fixture: PostgresFixture;
  let adapter: PostgresAdapter;
  const extraRoles: string[] = [];

  beforeAll(async () => {
    fixture = await createPostgresFixture(TEST_POSTGRES_URL!);
    adapter = new PostgresAdapter({ connectTimeoutSeconds: 1 });
  });

  afterAll(async () => {
    await adapter?.close();
    for (const role of extraRoles) {
      await fixture.sql.unsafe(`drop role if exists "${role}"`);
    }
    await fixture?.close();
  });

  function callFor(overrides: Parameters<PostgresFixture["settings"]>[0] = {}, options: Parameters<PostgresFixture["call"]>[1] = {}): AdapterCall {
    return fixture.call(adapter.parseSettings("dynamic", fixture.settings(overrides)), options);
  }

  function issue(call: AdapterCall) {
    return adapter.issue(call, { leaseId: "lease_failures", expiresAt: new Date(Date.now() + HOUR_MS), current: null });
  }

  async function caught(work: Promise<unknown>): Promise<Error> {
    const error = await work.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(error).toBeInstanceOf(Error);
    return error as Error;
  }

  /** Asserts that no password, SCRAM secret or statement text reached the error or its log form. */
  function expectNoSecrets(error: Error, ...secrets: string[]): void {
    const cause = error.cause as Error | undefined;
    const visible = [error.message, String(cause?.message ?? ""), JSON.stringify(error), JSON.stringify(cause ?? {})];
    for (const text of visible) {
      for (const secret of [fixture.admin.password, ...secrets]) {
        expect(text).not.toContain(secret);
      }
      expect(text).not.toContain("SCRAM-SHA-256");
      expect(text).not.toMatch(/password '/i);
    }
  }

  async function createAdminRole(attributes: string): Promise<string> {
    const name = `sbt_weak_${randomBytes(4).toString("hex")}`;
    extraRoles.push(name);
    await fixture.sql.unsafe(`create role ${name} ${attributes} password '${fixture.admin.password}'`);
    return name;
  }

  it("missing group role rejects without leftover", async () => {
    const missing = `sbt_missing_${randomBytes(4).toString("hex")}`;
    const call = callFor({ role: { member_of: [fixture.readerRole, missing] } });

    const error = await caught(issue(call));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain(`group role ${missing} does not exist`);
    expect(error.message).toContain(`${fixture.host}:${fixture.port}/${fixture.database}`);
    expect(error.message).toContain("db/orders-dynamic");
    expect(await fixture.dynamicRoles()).toEqual([]);
    expectNoSecrets(error);
  });

  it("admin without CREATEROLE is rejected", async () => {
    const weakAdmin = await createAdminRole("login");
    const call = callFor({ connection: { username: weakAdmin } });

    const error = await caught(issue(call));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain(`admin role ${weakAdmin} lacks the privilege`);
    expect(error.message).toContain("SQLSTATE 42501");
    // The failed statement is kept on the cause for debugging, but holds only the SCRAM secret.
    expect((error.cause as { query?: string }).query).toMatch(/password 'SCRAM-SHA-256\$4096:/);
    expectNoSecrets(error);
  });

  it("admin without ADMIN OPTION on group is rejected", async () => {
    const weakAdmin = await createAdminRole("login createrole");
    const call = callFor({ connection: { username: weakAdmin } });
    const serverVersion = Number((await fixture.sql`show server_version_num`)[0]!["server_version_num"]);

    const attempt = issue(call);

    // PostgreSQL 15 lets any CREATEROLE role grant non-superuser roles; 16 requires ADMIN OPTION.
    if (serverVersion >= 160000) {
      const error = await caught(attempt);
      expect(error).toBeInstanceOf(UpstreamRejected);
      expect(error.message).toContain(`may not grant group role ${fixture.readerRole}`);
      expectNoSecrets(error);
    } else {
      const credential = await attempt;
      await adapter.revoke(call, { upstreamLeaseId: credential.upstreamLeaseId! });
    }
  });

  it("admin that may not log in is rejected", async () => {
    const lockedAdmin = await createAdminRole("nologin createrole");
    const call = callFor({ connection: { username: lockedAdmin } });

    const error = await caught(issue(call));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain(`rejected the login of admin role ${lockedAdmin}`);
    expect(error.message).toContain("SQLSTATE 28000");
    expect(error.message).toContain("local secret db/orders-admin");
    expectNoSecrets(error);
  });

  it("unknown admin role is rejected", async () => {
    const call = callFor({ connection: { username: `sbt_nobody_${randomBytes(4).toString("hex")}` } });

    const error = await caught(issue(call));

    expect(error).toBeInstanceOf(UpstreamRejected);
    // 28000 on a server that trusts the connection, 28P01 on one that checks passwords.
    expect(error.message).toMatch(/SQLSTATE 28(000|P01)/);
    expectNoSecrets(error);
  });

  it("wrong admin password is rejected", async (context) => {
    if (!(await serverChecksPasswords(fixture.sql))) {
      // With trust in pg_hba.conf the server accepts any password.
      context.skip();
    }
    const wrong = "not-the-admin-password";
    const call = callFor({}, { readLocalSecret: async () => ({ password: wrong }) });

    const error = await caught(issue(call));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain("SQLSTATE 28P01");
    expectNoSecrets(error, wrong);
  });

  it("unknown database is rejected", async () => {
    const call = callFor({ connection: { database: `sbt_nodb_${randomBytes(4).toString("hex")}` } });

    const error = await caught(issue(call));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain("SQLSTATE 3D000");
  });

  it("refused connection is unavailable", async () => {
    const port = await unusedPort();
    const call = callFor({ connection: { port } });

    const error = await caught(issue(call));

    expect(error).toBeInstanceOf(UpstreamUnavailable);
    expect(error).toMatchObject({ code: "upstream_unavailable", retryable: true });
    expect(error.message).toContain(`${fixture.host}:${port}/${fixture.database}`);
    expect(error.message).toContain("ECONNREFUSED");
    expectNoSecrets(error);
  });

  it.for(["require", "verify-full"])("ssl %s fails without server TLS", async (ssl, context) => {
    if ((await fixture.sql`show ssl`)[0]!["ssl"] === "on") {
      context.skip();
    }
    const call = callFor({ connection: { ssl } });

    const error = await caught(issue(call));

    expect(error).toBeInstanceOf(UpstreamUnavailable);
    expect(error.message).toContain("ECONNRESET");
  });

  it("silent server times out as unavailable", async () => {
    const silent = await startSilentServer();
    try {
      const call = callFor({ connection: { port: silent.port } });

      const error = await caught(issue(call));

      expect(error).toBeInstanceOf(UpstreamUnavailable);
      expect(error.message).toContain("CONNECT_TIMEOUT");
    } finally {
      await silent.close();
    }
  });

  it("abort while connecting times out", async () => {
    const silent = await startSilentServer();
    const slowAdapter = new PostgresAdapter({ connectTimeoutSeconds: 30 });
    try {
      const controller = new AbortController();
      const call = fixture.call(slowAdapter.parseSettings("dynamic", fixture.settings({ connection: { port: silent.port } })), {
        signal: controller.signal,
      });
      const started = Date.now();
      setTimeout(() => controller.abort(new Error("call timeout")), 200);

      const error = await caught(slowAdapter.issue(call, { leaseId: "lease_abort", expiresAt: new Date(Date.now() + HOUR_MS), current: null }));

      expect(error).toBeInstanceOf(UpstreamTimeout);
      expect(error).toMatchObject({ code: "upstream_timeout", retryable: true });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await slowAdapter.close();
      await silent.close();
    }
  });

  it("pre-aborted signal does nothing", async () => {
    const controller = new AbortController();
    controller.abort(new Error("call timeout"));
    let reads = 0;
    const call = callFor(
      {},
      {
        signal: controller.signal,
        readLocalSecret: async () => {
          reads += 1;
          return { password: fixture.admin.password };
        },
      },
    );
    const lease = { upstreamLeaseId: `sb_${fixture.namePrefix}_0123456789abcdef` };

    await expect(issue(call)).rejects.toBeInstanceOf(UpstreamTimeout);
    await expect(adapter.renew(call, lease, new Date(Date.now() + HOUR_MS))).rejects.toBeInstanceOf(UpstreamTimeout);
    await expect(adapter.revoke(call, lease)).rejects.toBeInstanceOf(UpstreamTimeout);
    expect(reads).toBe(0);
    expect(await fixture.dynamicRoles()).toEqual([]);
  });

  it("abort during issue rolls role back", async () => {
    const controller = new AbortController();
    const call = callFor({}, { signal: controller.signal });
    const blocker = await fixture.sql.reserve();
    try {
      // SHARE blocks the GRANT of the group role, which writes pg_auth_members, for a moment, server-wide.
      await blocker`begin`;
      await blocker`lock table pg_catalog.pg_auth_members in share mode`;
      const attempt = caught(issue(call));
      await waitForAdminLockWait(fixture.sql, fixture.admin.username);

      controller.abort(new Error("call timeout"));
      const error = await attempt;

      expect(error).toBeInstanceOf(UpstreamTimeout);
      expect(error.message).toContain("timed out");
      await waitForCancel(fixture.sql, fixture.admin.username);
    } finally {
      await blocker`rollback`;
      blocker.release();
    }
    await waitForAdminIdle(fixture.sql, fixture.admin.username);
    expect(await fixture.dynamicRoles()).toEqual([]);
  });

  it("abort during renew leaves expiry", async () => {
    const credential = await issue(callFor());
    const roleName = credential.upstreamLeaseId!;
    const before = (await fixture.role(roleName))?.rolvaliduntil;
    const controller = new AbortController();
    const blocker = await fixture.sql.reserve();
    try {
      await blocker`begin`;
      await blocker.unsafe(`alter role "${roleName}" connection limit 3`);
      const attempt = caught(adapter.renew(callFor({}, { signal: controller.signal }), { upstreamLeaseId: roleName }, new Date(Date.now() + 5 * HOUR_MS)));
      await waitForAdminLockWait(fixture.sql, fixture.admin.username);

      controller.abort(new Error("call timeout"));

      expect(await attempt).toBeInstanceOf(UpstreamTimeout);
      await waitForCancel(fixture.sql, fixture.admin.username);
    } finally {
      await blocker`rollback`;
      blocker.release();
    }
    await waitForAdminIdle(fixture.sql, fixture.admin.username);
    expect((await fixture.role(roleName))?.rolvaliduntil).toEqual(before);
    await adapter.revoke(callFor(), { upstreamLeaseId: roleName });
  });

  it("revoke after aborted revoke finishes", async () => {
    const credential = await issue(callFor());
    const roleName = credential.upstreamLeaseId!;
    const controller = new AbortController();
    const blocker = await fixture.sql.reserve();
    try {
      await blocker`begin`;
      await blocker.unsafe(`alter role "${roleName}" connection limit 3`);
      const attempt = caught(adapter.revoke(callFor({}, { signal: controller.signal }), { upstreamLeaseId: roleName }));
      await waitForAdminLockWait(fixture.sql, fixture.admin.username);

      controller.abort(new Error("call timeout"));

      expect(await attempt).toBeInstanceOf(UpstreamTimeout);
      await waitForCancel(fixture.sql, fixture.admin.username);
    } finally {
      await blocker`rollback`;
      blocker.release();
    }
    expect(await fixture.role(roleName)).toBeDefined();

    await adapter.revoke(callFor(), { upstreamLeaseId: roleName });

    expect(await fixture.role(roleName)).toBeUndefined();
  });

  it("objects in another database block revoke", async () => {
    const otherDatabase = `${fixture.database}_other`;
    await fixture.sql.unsafe(`create database ${otherDatabase}`);
    const other = fixture.connectTo(otherDatabase);
    try {
      await other.unsafe(`grant create on schema public to ${fixture.writerRole}`);
      const call = callFor({ role: { member_of: [fixture.writerRole] } });
      const credential = await issue(call);
      const roleName = credential.upstreamLeaseId!;
      const client = fixture.connectAs(roleName, credential.data["password"]!, otherDatabase);
      await client`create table public.notes (body text)`;
      await client.end();

      const error = await caught(adapter.revoke(call, { upstreamLeaseId: roleName }));

      expect(error).toBeInstanceOf(UpstreamRejected);
      expect(error.message).toContain("SQLSTATE 2BP01");
      expect(error.message).toContain("another database");
      expect((await fixture.role(roleName))?.rolcanlogin).toBe(false);

      await other.end();
      await fixture.sql.unsafe(`drop database ${otherDatabase} with (force)`);
      await adapter.revoke(call, { upstreamLeaseId: roleName });

      expect(await fixture.role(roleName)).toBeUndefined();
    } finally {
      await other.end();
      await fixture.sql.unsafe(`drop database if exists ${otherDatabase} with (force)`);
    }
  });

  it("local secret without password field rejects", async () => {
    const secrets: SecretData[] = [{}, { password: "" }, { other: fixture.admin.password }];
    for (const secret of secrets) {
      const call = callFor({}, { readLocalSecret: async () => secret });

      const error = await caught(issue(call));

      expect(error).toBeInstanceOf(UpstreamRejected);
      expect(error.message).toContain("local secret db/orders-admin has no field password");
      expectNoSecrets(error);
    }
  });

  it("custom password field is read", async () => {
    const call = callFor({ connection: { password_field: "admin_password" } }, { readLocalSecret: async () => ({ admin_password: fixture.admin.password }) });

    const credential = await issue(call);

    await adapter.revoke(call, { upstreamLeaseId: credential.upstreamLeaseId! });
  });

  it("local secret errors propagate", async () => {
    const failure = new Error("local secret db/orders-admin not found");
    const call = callFor({}, { readLocalSecret: async () => Promise.reject(failure) });

    await expect(issue(call)).rejects.toBe(failure);
  });

  it("stored settings are checked again", async () => {
    const call = fixture.call({ connection: { host: fixture.host, password: "hunter2" } });

    const error = await caught(issue(call));

    expect(error).toBeInstanceOf(InvalidAdapterSettings);
    expect(error.message).not.toContain("hunter2");
  });
});

async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls pg_stat_activity until a session of `username` waits on a lock. */
async function waitForAdminLockWait(sql: postgres.Sql, username: string): Promise<void> {
  await pollUntil(sql, username, "wait_event_type = 'Lock'");
}

/**
 * Polls until no session of `username` waits on a lock. The cancel request of an
 * aborted call travels on its own connection, so it may reach the server after the
 * call has returned. A blocker released before that would let the statement finish.
 */
async function waitForCancel(sql: postgres.Sql, username: string): Promise<void> {
  await pollUntil(sql, username, "wait_event_type = 'Lock'", true);
}

/** Polls until no session of `username` is inside a statement or transaction any more. */
async function waitForAdminIdle(sql: postgres.Sql, username: string): Promise<void> {
  await pollUntil(sql, username, "state <> 'idle'", true);
}

async function pollUntil(sql: postgres.Sql, username: string, condition: string, untilNone = false): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_LIMIT_MS;
  while (Date.now() < deadline) {
    const rows = await sql.unsafe(`select 1 from pg_stat_activity where usename = $1 and ${condition}`, [username]);
    if (untilNone ? rows.length === 0 : rows.length > 0) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`sessions of ${username} did not reach "${condition}" within ${LOCK_WAIT_LIMIT_MS} ms`);
}
