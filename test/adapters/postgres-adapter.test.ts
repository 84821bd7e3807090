import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AdapterCall, IssuedCredential } from "../../adapters/contract.js";
import { AdapterError, UpstreamNotFound, UpstreamRejected } from "../../adapters/errors.js";
import { PostgresAdapter } from "../../adapters/postgres/postgres-adapter.js";
import { DYNAMIC_ROLE_NAME, PASSWORD_LENGTH } from "../../adapters/postgres/role-credentials.js";
import { scramSha256Verifier } from "../../adapters/postgres/scram-verifier.js";
import { createPostgresFixture, type PostgresFixture, serverChecksPasswords, TEST_POSTGRES_URL } from "../support/postgres-fixture.js";

const HOUR_MS = 3600_000;

describe.skipIf(!TEST_POSTGRES_URL)("postgres adapter", () => {
  let fixture: PostgresFixture;
  let adapter: PostgresAdapter;
  let call: AdapterCall;

  beforeAll(async () => {
    fixture = await createPostgresFixture(TEST_POSTGRES_URL!);
    adapter = new PostgresAdapter();
    call = fixture.call(adapter.parseSettings("dynamic", fixture.settings()));
  });

  afterAll(async () => {
    await adapter?.close();
    await fixture?.close();
  });

  function issue(expiresAt = new Date(Date.now() + HOUR_MS), onCall = call): Promise<IssuedCredential> {
    return adapter.issue(onCall, { leaseId: "lease_0123456789abcdef01234567", expiresAt, current: null });
  }

  function usernameOf(credential: IssuedCredential): string {
    return credential.data["username"]!;
  }

  it("issue returns login credentials", async () => {
    const expiresAt = new Date(Date.now() + HOUR_MS);
    const credential = await issue(expiresAt);

    const username = usernameOf(credential);
    expect(username).toMatch(DYNAMIC_ROLE_NAME);
    expect(username.startsWith(`sb_${fixture.namePrefix}_`)).toBe(true);
    expect(credential.data["password"]).toMatch(new RegExp(`^[A-Za-z0-9]{${PASSWORD_LENGTH}}$`));
    expect(credential.upstreamLeaseId).toBe(username);
    expect(credential.version).toBeNull();
    expect(credential.expiresAt).toEqual(expiresAt);
  });

  it("issued user reads granted table", async () => {
    const credential = await issue();
    const client = fixture.connectAs(usernameOf(credential), credential.data["password"]!);

    const [who] = await client`select current_user as name`;
    const rows = await client`select id, item from orders order by id`;

    expect(who!["name"]).toBe(usernameOf(credential));
    expect(rows).toHaveLength(fixture.rowsInOrders);
  });

  it("issued role has group, expiry and label", async () => {
    const expiresAt = new Date(Date.now() + 2 * HOUR_MS);
    const credential = await issue(expiresAt);

    const role = await fixture.role(usernameOf(credential));

    expect(role?.rolcanlogin).toBe(true);
    expect(role?.rolvaliduntil?.toISOString()).toBe(expiresAt.toISOString());
    expect(role?.member_of).toEqual([fixture.readerRole]);
    expect(role?.rolconnlimit).toBe(-1);
    expect(role?.description).toBe("secrets-broker lease lease_0123456789abcdef01234567");
  });

  it("issued role stores SCRAM secret of password", async () => {
    const credential = await issue();

    const stored = (await fixture.role(usernameOf(credential)))?.rolpassword ?? "";
    const [, iterations, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored) ?? [];

    expect(stored).toMatch(/^SCRAM-SHA-256\$/);
    expect(await scramSha256Verifier(credential.data["password"]!, Buffer.from(salt!, "base64"), Number(iterations))).toBe(stored);
  });

  it("issue joins several group roles", async () => {
    const settings = adapter.parseSettings("dynamic", fixture.settings({ role: { member_of: [fixture.readerRole, fixture.writerRole] } }));
    const credential = await issue(undefined, fixture.call(settings));

    const role = await fixture.role(usernameOf(credential));

    expect(role?.member_of).toEqual([fixture.readerRole, fixture.writerRole].sort());
  });

  it("issue without name prefix uses dyn", async () => {
    const settings = adapter.parseSettings("dynamic", fixture.settings({ role: { name_prefix: undefined } }));
    const credential = await issue(undefined, fixture.call(settings));

    try {
      expect(usernameOf(credential)).toMatch(/^sb_dyn_[0-9a-f]{16}$/);
    } finally {
      await adapter.revoke(call, { upstreamLeaseId: usernameOf(credential) });
    }
  });

  it("connection limit caps sessions", async () => {
    const settings = adapter.parseSettings("dynamic", fixture.settings({ role: { connection_limit: 1 } }));
    const credential = await issue(undefined, fixture.call(settings));
    const first = fixture.connectAs(usernameOf(credential), credential.data["password"]!);
    const second = fixture.connectAs(usernameOf(credential), credential.data["password"]!);

    await first`select 1`;

    expect((await fixture.role(usernameOf(credential)))?.rolconnlimit).toBe(1);
    await expect(second`select 1`).rejects.toMatchObject({ code: "53300" });
  });

  it("issue with past expiry sets past valid until", async () => {
    const expiresAt = new Date(Date.now() - 2000);
    const credential = await issue(expiresAt);

    const role = await fixture.role(usernameOf(credential));

    expect(role?.rolvaliduntil?.toISOString()).toBe(expiresAt.toISOString());
    expect(role!.rolvaliduntil!.getTime()).toBeLessThan(Date.now());
    // LOGIN stays: PostgreSQL itself rejects an expired password at login, when it checks passwords.
    expect(role?.rolcanlogin).toBe(true);
  });

  it("expired role cannot log in", async (context) => {
    if (!(await serverChecksPasswords(fixture.sql))) {
      // With trust in pg_hba.conf the server checks neither passwords nor VALID UNTIL.
      context.skip();
    }
    const credential = await issue(new Date(Date.now() - 2000));
    const client = fixture.connectAs(usernameOf(credential), credential.data["password"]!);

    await expect(client`select 1`).rejects.toMatchObject({ code: "28P01" });
  });

  it("renew moves valid until", async () => {
    const credential = await issue(new Date(Date.now() + HOUR_MS));
    const renewedTo = new Date(Date.now() + 3 * HOUR_MS);

    await adapter.renew(call, { upstreamLeaseId: usernameOf(credential) }, renewedTo);

    expect((await fixture.role(usernameOf(credential)))?.rolvaliduntil?.toISOString()).toBe(renewedTo.toISOString());
  });

  it("renew of dropped role is not found", async () => {
    const credential = await issue();
    await fixture.sql.unsafe(`drop role "${usernameOf(credential)}"`);

    const renewal = adapter.renew(call, { upstreamLeaseId: usernameOf(credential) }, new Date(Date.now() + HOUR_MS));

    await expect(renewal).rejects.toBeInstanceOf(UpstreamNotFound);
    await expect(renewal).rejects.toMatchObject({ code: "upstream_not_found", retryable: false });
  });

  it("revoke ends open session and drops role", async () => {
    const credential = await issue();
    const client = fixture.connectAs(usernameOf(credential), credential.data["password"]!);
    const [session] = await client`select pg_backend_pid() as pid`;

    await adapter.revoke(call, { upstreamLeaseId: usernameOf(credential) });

    const alive = await fixture.sql`select 1 from pg_stat_activity where pid = ${session!["pid"] as number}`;
    expect(alive).toHaveLength(0);
    // A query that needs no privilege fails only because the session is gone.
    await expect(client`select 1`).rejects.toBeInstanceOf(Error);
    expect(await fixture.role(usernameOf(credential))).toBeUndefined();
  });

  it("revoke drops objects the role owns", async () => {
    const settings = adapter.parseSettings("dynamic", fixture.settings({ role: { member_of: [fixture.writerRole] } }));
    const credential = await issue(undefined, fixture.call(settings));
    const client = fixture.connectAs(usernameOf(credential), credential.data["password"]!);
    await client`create table scratch.notes (body text)`;
    await client.end();

    await adapter.revoke(call, { upstreamLeaseId: usernameOf(credential) });

    const tables = await fixture.sql`select 1 from pg_tables where schemaname = 'scratch' and tablename = 'notes'`;
    expect(tables).toHaveLength(0);
    expect(await fixture.role(usernameOf(credential))).toBeUndefined();
  });

  it("revoking twice succeeds", async () => {
    const credential = await issue();
    const lease = { upstreamLeaseId: usernameOf(credential) };

    await adapter.revoke(call, lease);

    await expect(adapter.revoke(call, lease)).resolves.toBeUndefined();
  });

  it("revoke of never created role succeeds", async () => {
    await expect(adapter.revoke(call, { upstreamLeaseId: `sb_${fixture.namePrefix}_0123456789abcdef` })).resolves.toBeUndefined();
  });

  it.each<[string, () => string, boolean]>([
    ["superuser", () => "postgres", true],
    ["group role", () => fixture.readerRole, true],
    ["admin role", () => fixture.admin.username, true],
    ["short hex", () => "sb_dyn_0123456789abcde", false],
    ["upper case", () => "SB_DYN_0123456789ABCDEF", false],
    ["trailing newline", () => "sb_dyn_0123456789abcdef\n", false],
    ["injected statement", () => 'sb_dyn_0123456789abcdef"; drop role postgres; --', false],
    ["empty", () => "", false],
  ])("revoke rejects foreign role: %s", async (_label, roleNameOf, exists) => {
    const roleName = roleNameOf();

    const revocation = adapter.revoke(call, { upstreamLeaseId: roleName });
    const renewal = adapter.renew(call, { upstreamLeaseId: roleName }, new Date(Date.now() + HOUR_MS));

    await expect(revocation).rejects.toBeInstanceOf(UpstreamRejected);
    await expect(renewal).rejects.toBeInstanceOf(UpstreamRejected);
    if (exists) {
      expect(await fixture.role(roleName)).toBeDefined();
    }
  });

  it.each<[string, () => Promise<unknown>]>([
    ["createPending", () => adapter.createPending(call, { rotationId: "rot_dynamic", current: null, value: { password: "a".repeat(20) } })],
    ["setPending", () => adapter.setPending(call, { version: "2", sealedValue: null })],
    ["testPending", () => adapter.testPending(call, { version: "2", sealedValue: null })],
    ["finishPending", () => adapter.finishPending(call, { version: "2", sealedValue: null }, { version: "1", sealedValue: null })],
    ["discardPending", () => adapter.discardPending(call, { version: "2", sealedValue: null }, { version: "1", sealedValue: null })],
  ])("rotation step %s rejects", async (_step, runStep) => {
    const attempt = runStep();

    await expect(attempt).rejects.toBeInstanceOf(UpstreamRejected);
    await expect(attempt).rejects.toThrow(/rotation of dynamic PostgreSQL secrets is not supported/);
  });

  it("admin pool keeps two connections", async () => {
    await adapter.close();
    const credentials = await Promise.all(Array.from({ length: 6 }, () => issue()));

    const sessions = await adminSessions();
    await adapter.close();

    expect(credentials).toHaveLength(6);
    expect(sessions).toBeGreaterThan(0);
    expect(sessions).toBeLessThanOrEqual(2);
    expect(await adminSessionsAfterClose()).toBe(0);
  });

  it("pool reused until admin password changes", async () => {
    await adapter.close();
    await adminSessionsAfterClose();
    const newPassword = `${fixture.admin.password}2`;
    const rotated = fixture.call(call.secret.settings, { readLocalSecret: async () => ({ password: newPassword }) });

    await issue();
    const first = await adminSessionPids();
    await issue();
    const reused = await adminSessionPids();
    await fixture.sql.unsafe(`alter role ${fixture.admin.username} password '${newPassword}'`);
    await issue(undefined, rotated);
    const replaced = await adminSessionPidsWithout(first);
    await fixture.sql.unsafe(`alter role ${fixture.admin.username} password '${fixture.admin.password}'`);

    expect(first.length).toBeGreaterThan(0);
    expect(reused).toEqual(first);
    expect(replaced.length).toBeGreaterThan(0);
    expect(replaced.filter((pid) => first.includes(pid))).toEqual([]);
  });

  it("errors carry adapter codes", async () => {
    const error = await adapter.revoke(call, { upstreamLeaseId: "postgres" }).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(AdapterError);
    expect(error).toMatchObject({ code: "upstream_rejected", retryable: false });
    expect((error as Error).message).toContain("db/orders-dynamic");
  });

  async function adminSessions(): Promise<number> {
    const rows = await fixture.sql<{ sessions: number }[]>`
      select count(*)::int as sessions from pg_stat_activity
      where usename = ${fixture.admin.username} and application_name = 'secrets-broker'`;
    return rows[0]!.sessions;
  }

  async function adminSessionPids(): Promise<number[]> {
    const rows = await fixture.sql<{ pid: number }[]>`
      select pid from pg_stat_activity where usename = ${fixture.admin.username} order by pid`;
    return rows.map((row) => row.pid);
  }

  /** Polls until the sessions in `old` have left, then returns the admin sessions left. */
  async function adminSessionPidsWithout(old: number[]): Promise<number[]> {
    for (let attempt = 0; attempt < 250; attempt += 1) {
      const pids = await adminSessionPids();
      if (!pids.some((pid) => old.includes(pid))) {
        return pids;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return adminSessionPids();
  }

  /** Polls briefly, because a backend leaves pg_stat_activity a moment after its client disconnects. */
  async function adminSessionsAfterClose(): Promise<number> {
    for (let attempt = 0; attempt < 50; attempt += 1) {
      const sessions = await adminSessions();
      if (sessions === 0) {
        return 0;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return adminSessions();
  }
});
