import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AdapterCall, PendingVersion, SecretData, VersionRef } from "../../adapters/contract.js";
import { InvalidAdapterSettings, InvalidSecretValue, UpstreamNotFound, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable } from "../../adapters/errors.js";
import { PostgresAdapter } from "../../adapters/postgres/postgres-adapter.js";
import { PASSWORD_LENGTH } from "../../adapters/postgres/role-credentials.js";
import { scramSha256Verifier } from "../../adapters/postgres/scram-verifier.js";
import { createPostgresFixture, type PostgresFixture, serverChecksPasswords, startSilentServer, TEST_POSTGRES_URL } from "../support/postgres-fixture.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

const HOUR_MS = 3600_000;
const FIRST_VALUE_REQUIRED = `a static PostgreSQL secret needs the role's current password as its first value: give value {"password": ...}`;

/** Returns a password of 24 URL-safe base64 characters, long enough for a first value. */
function knownPassword(): string {
  return randomBytes(18).toString("base64url");
}

function toRef(pending: PendingVersion): VersionRef {
  return { version: pending.version, sealedValue: pending.sealedValue };
}

/** Runs `work` and returns what it threw; fails the test when it succeeded. */
async function caught(work: Promise<unknown>): Promise<Error> {
  const error = await work.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error;
}

describe("postgres static settings", () => {
  const adapter = new PostgresAdapter();

  function validSettings() {
    return {
      connection: { host: "127.0.0.1", database: "orders", username: "broker_admin", password_secret: "db/orders-admin" },
      role: { name: "orders_app" },
    };
  }

  type Settings = ReturnType<typeof validSettings>;

  function parseError(settings: unknown): InvalidAdapterSettings {
    try {
      adapter.parseSettings("static", settings);
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidAdapterSettings);
      return error as InvalidAdapterSettings;
    }
    throw new Error("parseSettings accepted invalid settings");
  }

  it("valid settings get defaults", () => {
    expect(adapter.parseSettings("static", validSettings())).toEqual({
      connection: { ...validSettings().connection, port: 5432, password_field: "password", ssl: "disable" },
      role: { name: "orders_app" },
    });
  });

  it("role name keeps its case", () => {
    const settings = adapter.parseSettings("static", { ...validSettings(), role: { name: "Orders_App$1" } }) as Settings;

    expect(settings.role.name).toBe("Orders_App$1");
  });

  const badSettings: [string, (settings: Settings) => unknown, string][] = [
    ["role missing", (s) => ({ connection: s.connection }), "role"],
    ["role not object", (s) => ({ ...s, role: "orders_app" }), "role"],
    ["role.name missing", (s) => ({ ...s, role: {} }), "role.name"],
    ["role.name empty", (s) => ({ ...s, role: { name: "" } }), "role.name"],
    ["role.name number", (s) => ({ ...s, role: { name: 5 } }), "role.name"],
    ["role.name dash", (s) => ({ ...s, role: { name: "orders-app" } }), "role.name"],
    ["role.name digit first", (s) => ({ ...s, role: { name: "1orders" } }), "role.name"],
    ["role.name 64 characters", (s) => ({ ...s, role: { name: "r".repeat(64) } }), "role.name"],
    ["role.name quote injection", (s) => ({ ...s, role: { name: 'x"; drop role postgres; --' } }), "role.name"],
    ["role.name dynamic lease role", (s) => ({ ...s, role: { name: "sb_dyn_0123456789abcdef" } }), "role.name"],
    ["role.member_of", (s) => ({ ...s, role: { ...s.role, member_of: ["orders_readonly"] } }), "role.member_of"],
    ["role.name_prefix", (s) => ({ ...s, role: { ...s.role, name_prefix: "orders" } }), "role.name_prefix"],
    ["role.connection_limit", (s) => ({ ...s, role: { ...s.role, connection_limit: 5 } }), "role.connection_limit"],
    ["unknown role setting", (s) => ({ ...s, role: { ...s.role, superuser: true } }), "role.superuser"],
    ["host missing", (s) => ({ ...s, connection: { ...s.connection, host: undefined } }), "connection.host"],
    ["literal admin password", (s) => ({ ...s, connection: { ...s.connection, password: "hunter2-admin" } }), "connection.password"],
    ["unknown top-level setting", (s) => ({ ...s, password: "hunter2-app" }), "password"],
  ];

  it.each(badSettings)("rejects %s", (_label, mutate, field) => {
    const error = parseError(mutate(validSettings()));

    expect(error.code).toBe("invalid_settings");
    expect(error.invalidSettings.map((entry) => entry.name)).toEqual([field]);
    expect(error.invalidSettings[0]!.reason).not.toBe("");
    expect(error.message).not.toContain("hunter2");
  });

  it.each<[string, unknown]>([
    ["member_of", []],
    ["name_prefix", "orders"],
    ["connection_limit", 5],
  ])("role.%s marked dynamic only", (field, fieldValue) => {
    const settings = validSettings();
    const error = parseError({ ...settings, role: { ...settings.role, [field]: fieldValue } });

    expect(error.invalidSettings[0]!.reason).toContain("applies only to dynamic secrets");
  });

  it("role.name marked static only", () => {
    let error: unknown;
    try {
      adapter.parseSettings("dynamic", validSettings());
    } catch (caught) {
      error = caught;
    }

    expect(error).toBeInstanceOf(InvalidAdapterSettings);
    expect((error as InvalidAdapterSettings).invalidSettings).toEqual([
      { name: "role.name", reason: expect.stringContaining("applies only to static secrets") },
    ]);
  });
});

describe.skipIf(!TEST_POSTGRES_URL)("postgres static rotation", () => {
  let fixture: PostgresFixture;
  let broker: TestBroker;
  let adapter: PostgresAdapter;
  let checksPasswords: boolean;

  beforeAll(async () => {
    fixture = await createPostgresFixture(TEST_POSTGRES_URL!);
    broker = await startTestBroker();
    adapter = new PostgresAdapter({ sealer: broker.deps.dataKeys, connectTimeoutSeconds: 2 });
    checksPasswords = await serverChecksPasswords(fixture.sql);
  });

  afterAll(async () => {
    await adapter?.close();
    await fixture?.close();
    await broker?.close();
  });

  function staticCall(roleName: string, options: Parameters<PostgresFixture["call"]>[1] = {}, connection?: Record<string, unknown>): AdapterCall {
    const settings = adapter.parseSettings("static", fixture.staticSettings(roleName, connection ? { connection } : {}));
    return fixture.call(settings, { kind: "static", ...options });
  }

  /** Creates a login role with a known password and its first version. */
  async function roleWithFirstVersion(): Promise<{ roleName: string; password: string; call: AdapterCall; first: VersionRef }> {
    const password = knownPassword();
    const roleName = await fixture.createRole(password);
    const call = staticCall(roleName);
    const first = toRef(await adapter.createPending(call, { rotationId: null, current: null, value: { password } }));
    return { roleName, password, call, first };
  }

  /** Logs in as `roleName` on a new connection; returns "ok" or the SQLSTATE of the failed login. */
  async function loginResult(roleName: string, password: string): Promise<string> {
    const client = fixture.connectAs(roleName, password);
    try {
      await client`select 1`;
      return "ok";
    } catch (error) {
      return String((error as { code?: unknown }).code);
    } finally {
      await client.end({ timeout: 1 });
    }
  }

  async function storedSecret(roleName: string): Promise<string | null | undefined> {
    return (await fixture.role(roleName))?.rolpassword;
  }

  /** Asserts that no password or SCRAM secret reached the error, its cause or their JSON forms. */
  function expectNoSecrets(error: Error, ...passwords: string[]): void {
    const cause = error.cause as Error | undefined;
    const visible = [error.message, String(cause?.message ?? ""), JSON.stringify(error), JSON.stringify(cause ?? {})];
    for (const text of visible) {
      for (const password of [fixture.admin.password, ...passwords]) {
        expect(text).not.toContain(password);
      }
      expect(text).not.toContain("SCRAM-SHA-256");
      expect(text).not.toMatch(/password '/i);
    }
  }

  function skipUnlessPasswordsChecked(context: { skip: () => void }): void {
    if (!checksPasswords) {
      // With trust in pg_hba.conf the server accepts any password, so logins prove nothing.
      context.skip();
    }
  }

  it("declares static kind with sealer", () => {
    expect(adapter.kinds).toEqual(["dynamic", "static"]);
    expect(new PostgresAdapter().kinds).toEqual(["dynamic"]);
  });

  it("first version takes given password", async () => {
    const password = knownPassword();
    const roleName = await fixture.createRole(password);
    const before = await storedSecret(roleName);

    const pending = await adapter.createPending(staticCall(roleName), { rotationId: null, current: null, value: { password } });

    expect(pending.version).toBe("1");
    expect(pending.data).toEqual({ username: roleName, password });
    expect(pending.sealedValue).not.toContain(password);
    expect(await storedSecret(roleName)).toBe(before);
  });

  it("first version accepts matching username", async () => {
    const password = knownPassword();
    const roleName = await fixture.createRole(password);

    const pending = await adapter.createPending(staticCall(roleName), { rotationId: null, current: null, value: { username: roleName, password } });

    expect(pending.data).toEqual({ username: roleName, password });
  });

  it("first version without value rejected", async () => {
    const roleName = await fixture.createRole(knownPassword());

    const error = await caught(adapter.createPending(staticCall(roleName), { rotationId: null, current: null }));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain(FIRST_VALUE_REQUIRED);
    expect(error.message).toContain("db/orders-static");
  });

  it("first version with wrong password rejected", async (context) => {
    skipUnlessPasswordsChecked(context);
    const roleName = await fixture.createRole(knownPassword());
    const before = await storedSecret(roleName);
    const wrong = knownPassword();

    const error = await caught(adapter.createPending(staticCall(roleName), { rotationId: null, current: null, value: { password: wrong } }));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain(`login with the given password failed for role ${roleName}`);
    expect(error.message).toContain("SQLSTATE 28P01");
    expect(await storedSecret(roleName)).toBe(before);
    expectNoSecrets(error, wrong);
  });

  it("first version of NOLOGIN role rejected", async () => {
    const password = knownPassword();
    const roleName = await fixture.createRole(password, "nologin");

    const error = await caught(adapter.createPending(staticCall(roleName), { rotationId: null, current: null, value: { password } }));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain("SQLSTATE 28000");
    expectNoSecrets(error, password);
  });

  it("rotation sets and proves new password", async (context) => {
    skipUnlessPasswordsChecked(context);
    const { roleName, password: oldPassword, call, first } = await roleWithFirstVersion();
    const before = await storedSecret(roleName);

    const pending = await adapter.createPending(call, { rotationId: "rot_full", current: first });
    const newPassword = pending.data["password"]!;
    const afterCreate = await storedSecret(roleName);
    await adapter.setPending(call, toRef(pending));
    const afterSet = (await storedSecret(roleName)) ?? "";
    await adapter.testPending(call, toRef(pending));
    await adapter.finishPending(call, toRef(pending), first);

    expect(pending.version).toBe("2");
    expect(pending.data["username"]).toBe(roleName);
    expect(newPassword).toMatch(new RegExp(`^[A-Za-z0-9]{${PASSWORD_LENGTH}}$`));
    expect(afterCreate).toBe(before);
    const [, iterations, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(afterSet) ?? [];
    expect(await scramSha256Verifier(newPassword, Buffer.from(salt!, "base64"), Number(iterations))).toBe(afterSet);
    expect(await loginResult(roleName, oldPassword)).toBe("28P01");
    expect(await loginResult(roleName, newPassword)).toBe("ok");
  });

  it("issue returns current value", async () => {
    const { roleName, password, call, first } = await roleWithFirstVersion();
    const second = await adapter.createPending(call, { rotationId: "rot_issue", current: first });

    const issuedFirst = await adapter.issue(call, { leaseId: "lease_static_1", expiresAt: new Date(Date.now() + HOUR_MS), current: first });
    const issuedSecond = await adapter.issue(call, { leaseId: "lease_static_2", expiresAt: new Date(Date.now() + HOUR_MS), current: toRef(second) });

    expect(issuedFirst).toEqual({ data: { username: roleName, password }, version: "1", upstreamLeaseId: null });
    expect(issuedSecond).toEqual({ data: second.data, version: "2", upstreamLeaseId: null });
  });

  it("issue without current version not found", async () => {
    const roleName = await fixture.createRole(knownPassword());

    const error = await caught(adapter.issue(staticCall(roleName), { leaseId: "lease_none", expiresAt: new Date(Date.now() + HOUR_MS), current: null }));

    expect(error).toBeInstanceOf(UpstreamNotFound);
    expect(error.message).toContain(FIRST_VALUE_REQUIRED);
  });

  it("rollback restores current password", async (context) => {
    skipUnlessPasswordsChecked(context);
    const { roleName, password: oldPassword, call, first } = await roleWithFirstVersion();
    const pending = await adapter.createPending(call, { rotationId: "rot_rollback", current: first });
    await adapter.setPending(call, toRef(pending));

    await adapter.discardPending(call, toRef(pending), first);

    expect(await loginResult(roleName, oldPassword)).toBe("ok");
    expect(await loginResult(roleName, pending.data["password"]!)).toBe("28P01");
  });

  it("rollback twice keeps current password", async (context) => {
    skipUnlessPasswordsChecked(context);
    const { roleName, password: oldPassword, call, first } = await roleWithFirstVersion();
    const pending = await adapter.createPending(call, { rotationId: "rot_twice", current: first });
    await adapter.setPending(call, toRef(pending));

    await adapter.discardPending(call, toRef(pending), first);
    await adapter.discardPending(call, toRef(pending), first);

    expect(await loginResult(roleName, oldPassword)).toBe("ok");
  });

  it("rollback before setPending keeps current password", async (context) => {
    skipUnlessPasswordsChecked(context);
    const { roleName, password: oldPassword, call, first } = await roleWithFirstVersion();
    const pending = await adapter.createPending(call, { rotationId: "rot_early", current: first });

    await adapter.discardPending(call, toRef(pending), first);

    expect(await loginResult(roleName, oldPassword)).toBe("ok");
  });

  it("rollback without current changes nothing", async () => {
    const { roleName, call, first } = await roleWithFirstVersion();
    const before = await storedSecret(roleName);

    await adapter.discardPending(call, first, null);

    expect(await storedSecret(roleName)).toBe(before);
  });

  it("rotation to given printable password", async (context) => {
    skipUnlessPasswordsChecked(context);
    const { roleName, password: oldPassword, call, first } = await roleWithFirstVersion();
    const chosenPassword = `it's a "pass phrase" with \\ and ~ ${knownPassword()}`;

    const pending = await adapter.createPending(call, { rotationId: "rot_given", current: first, value: { password: chosenPassword } });
    await adapter.setPending(call, toRef(pending));
    await adapter.testPending(call, toRef(pending));

    expect(pending.data).toEqual({ username: roleName, password: chosenPassword });
    expect(await loginResult(roleName, chosenPassword)).toBe("ok");

    await adapter.discardPending(call, toRef(pending), first);

    expect(await loginResult(roleName, oldPassword)).toBe("ok");
    expect(await loginResult(roleName, chosenPassword)).toBe("28P01");
  });

  it("versions count from current", async () => {
    const { call } = await roleWithFirstVersion();

    const tenth = await adapter.createPending(call, { rotationId: "rot_count", current: { version: "9", sealedValue: null } });
    const error = await caught(adapter.createPending(call, { rotationId: "rot_bad", current: { version: "v3", sealedValue: null } }));

    expect(tenth.version).toBe("10");
    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain("not a version counter");
  });

  it("generated passwords differ per rotation", async () => {
    const { call, first } = await roleWithFirstVersion();

    const firstTry = await adapter.createPending(call, { rotationId: "rot_a", current: first });
    const retry = await adapter.createPending(call, { rotationId: "rot_a", current: first });

    expect(firstTry.version).toBe(retry.version);
    expect(firstTry.data["password"]).not.toBe(retry.data["password"]);
  });

  it("testPending without setPending rejects", async (context) => {
    skipUnlessPasswordsChecked(context);
    const { roleName, call, first } = await roleWithFirstVersion();
    const pending = await adapter.createPending(call, { rotationId: "rot_unset", current: first });

    const error = await caught(adapter.testPending(call, toRef(pending)));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain(`login with the new password failed for role ${roleName}`);
    expect(error.message).toContain("SQLSTATE 28P01");
    expectNoSecrets(error, pending.data["password"]!);
  });

  it("testPending with relabelled sealed value rejects", async () => {
    const { call, first } = await roleWithFirstVersion();
    const pending = await adapter.createPending(call, { rotationId: "rot_relabel", current: first });

    const error = await caught(adapter.testPending(call, { version: "3", sealedValue: pending.sealedValue }));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain("failed its integrity check");
    expectNoSecrets(error, pending.data["password"]!);
  });

  it("testPending with altered sealed value rejects", async () => {
    const { call, first } = await roleWithFirstVersion();
    const pending = await adapter.createPending(call, { rotationId: "rot_altered", current: first });
    const sealed = pending.sealedValue!;
    const altered = `${sealed.slice(0, -2)}${sealed.endsWith("AA") ? "BB" : "AA"}`;

    const error = await caught(adapter.testPending(call, { version: pending.version, sealedValue: altered }));

    expect(error).toBeInstanceOf(UpstreamRejected);
  });

  it("testPending without sealed value not found", async () => {
    const { call } = await roleWithFirstVersion();

    const error = await caught(adapter.testPending(call, { version: "2", sealedValue: null }));

    expect(error).toBeInstanceOf(UpstreamNotFound);
  });

  it("testPending of NOLOGIN role rejects", async () => {
    const { roleName, call, first } = await roleWithFirstVersion();
    const pending = await adapter.createPending(call, { rotationId: "rot_nologin", current: first });
    await adapter.setPending(call, toRef(pending));
    await fixture.sql.unsafe(`alter role ${roleName} nologin`);

    const error = await caught(adapter.testPending(call, toRef(pending)));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain(`login with the new password failed for role ${roleName}`);
    expect(error.message).toContain("SQLSTATE 28000");
    expectNoSecrets(error, pending.data["password"]!);
  });

  it("value of another role rejected", async () => {
    const { roleName: otherRole, call: otherCall, first: otherFirst } = await roleWithFirstVersion();
    const { roleName, call } = await roleWithFirstVersion();
    const pending = await adapter.createPending(otherCall, { rotationId: "rot_other", current: otherFirst });
    const before = await storedSecret(roleName);

    const setError = await caught(adapter.setPending(call, toRef(pending)));
    const discardError = await caught(adapter.discardPending(call, toRef(pending), otherFirst));

    for (const error of [setError, discardError]) {
      expect(error).toBeInstanceOf(UpstreamRejected);
      expect(error.message).toContain(`belongs to role ${otherRole}, but role.name is ${roleName}`);
    }
    expect(await storedSecret(roleName)).toBe(before);
  });

  it("admin naming itself rejected", async () => {
    const call = staticCall(fixture.admin.username);
    const before = await storedSecret(fixture.admin.username);

    const firstError = await caught(adapter.createPending(call, { rotationId: null, current: null, value: { password: fixture.admin.password } }));
    const pending = await adapter.createPending(call, { rotationId: "rot_admin", current: { version: "1", sealedValue: null } });
    const setError = await caught(adapter.setPending(call, toRef(pending)));

    for (const error of [firstError, setError]) {
      expect(error).toBeInstanceOf(UpstreamRejected);
      expect(error.message).toContain(`role ${fixture.admin.username} is the admin role the broker logs in as`);
      expectNoSecrets(error, pending.data["password"]!);
    }
    expect(await storedSecret(fixture.admin.username)).toBe(before);
  });

  it("superuser role rejected", async () => {
    const [superuser] = await fixture.sql<{ rolname: string }[]>`select rolname from pg_roles where rolsuper order by oid limit 1`;
    const roleName = superuser!.rolname;
    const call = staticCall(roleName);
    const before = await storedSecret(roleName);

    const firstError = await caught(adapter.createPending(call, { rotationId: null, current: null, value: { password: knownPassword() } }));
    const pending = await adapter.createPending(call, { rotationId: "rot_super", current: { version: "1", sealedValue: null } });
    const setError = await caught(adapter.setPending(call, toRef(pending)));
    const discardError = await caught(adapter.discardPending(call, { version: "3", sealedValue: null }, toRef(pending)));

    for (const error of [firstError, setError, discardError]) {
      expect(error).toBeInstanceOf(UpstreamRejected);
      expect(error.message).toContain(`role ${roleName} is a superuser`);
      expectNoSecrets(error, pending.data["password"]!);
    }
    expect(await storedSecret(roleName)).toBe(before);
  });

  it("missing role not found", async () => {
    const roleName = `sbt_nobody_${randomBytes(4).toString("hex")}`;
    const call = staticCall(roleName);

    const firstError = await caught(adapter.createPending(call, { rotationId: null, current: null, value: { password: knownPassword() } }));
    const pending = await adapter.createPending(call, { rotationId: "rot_missing", current: { version: "1", sealedValue: null } });
    const setError = await caught(adapter.setPending(call, toRef(pending)));

    for (const error of [firstError, setError]) {
      expect(error).toBeInstanceOf(UpstreamNotFound);
      expect(error.message).toContain(`role ${roleName} does not exist`);
    }
  });

  it("admin without privilege rejected", async () => {
    const weakPassword = knownPassword();
    const weakAdmin = await fixture.createRole(weakPassword);
    const { roleName, call: strongCall, first } = await roleWithFirstVersion();
    const pending = await adapter.createPending(strongCall, { rotationId: "rot_weak", current: first });
    const before = await storedSecret(roleName);
    const call = staticCall(roleName, { readLocalSecret: async () => ({ password: weakPassword }) }, { username: weakAdmin });

    const error = await caught(adapter.setPending(call, toRef(pending)));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain(`admin role ${weakAdmin} may not set the password of role ${roleName}`);
    expect(error.message).toContain("SQLSTATE 42501");
    // The failed statement stays on the cause for debugging, and it holds only the SCRAM secret.
    expect((error.cause as { query?: string }).query).toMatch(/password 'SCRAM-SHA-256\$4096:/);
    expect(await storedSecret(roleName)).toBe(before);
    expectNoSecrets(error, weakPassword, pending.data["password"]!);
  });

  const badValues: [string, (roleName: string) => unknown][] = [
    ["no password", () => ({})],
    ["password not a string", () => ({ password: 1234567890123456 })],
    ["password 15 characters", () => ({ password: "Sh0rt-but-secret".slice(0, 15) })],
    ["password 1025 characters", () => ({ password: "L".repeat(1025) })],
    ["password with tab", () => ({ password: "tabbed\tsecret-password" })],
    ["password with newline", () => ({ password: "newline\nsecret-password" })],
    ["password not ASCII", () => ({ password: "pässwörd-sécret-value" })],
    ["username of another role", () => ({ username: "postgres", password: "another-role-secret-1" })],
    ["unknown field", () => ({ password: "unknown-field-secret-1", host: "db.example.com" })],
    ["value an array", () => ["array-secret-value-123"]],
  ];

  it.each(badValues)("given value rejected: %s", async (_label, valueFor) => {
    const roleName = await fixture.createRole(knownPassword());
    const value = valueFor(roleName);

    const first = await caught(adapter.createPending(staticCall(roleName), { rotationId: null, current: null, value: value as SecretData }));
    const later = await caught(
      adapter.createPending(staticCall(roleName), { rotationId: "rot_value", current: { version: "1", sealedValue: null }, value: value as SecretData }),
    );

    for (const error of [first, later]) {
      expect(error).toBeInstanceOf(InvalidSecretValue);
      for (const field of Object.values(value as object)) {
        if (typeof field === "string" && field !== "postgres") {
          expect(error.message).not.toContain(field);
        }
      }
    }
  });

  it("pre-aborted signal changes nothing", async () => {
    const { roleName, call, first } = await roleWithFirstVersion();
    const pending = await adapter.createPending(call, { rotationId: "rot_abort", current: first });
    const before = await storedSecret(roleName);
    const controller = new AbortController();
    controller.abort(new Error("call timeout"));
    const aborted = staticCall(roleName, { signal: controller.signal });

    const errors = [
      await caught(adapter.setPending(aborted, toRef(pending))),
      await caught(adapter.testPending(aborted, toRef(pending))),
      await caught(adapter.discardPending(aborted, toRef(pending), first)),
      await caught(adapter.createPending(aborted, { rotationId: null, current: null, value: { password: knownPassword() } })),
    ];

    for (const error of errors) {
      expect(error).toBeInstanceOf(UpstreamTimeout);
    }
    expect(await storedSecret(roleName)).toBe(before);
  });

  it("abort during login check times out", async () => {
    const { roleName, call, first } = await roleWithFirstVersion();
    const pending = await adapter.createPending(call, { rotationId: "rot_silent", current: first });
    const silent = await startSilentServer();
    const slowAdapter = new PostgresAdapter({ sealer: broker.deps.dataKeys, connectTimeoutSeconds: 30 });
    try {
      const controller = new AbortController();
      const silentCall = staticCall(roleName, { signal: controller.signal }, { port: silent.port });
      const started = Date.now();
      setTimeout(() => controller.abort(new Error("call timeout")), 200);

      const error = await caught(slowAdapter.testPending(silentCall, toRef(pending)));

      expect(error).toBeInstanceOf(UpstreamTimeout);
      expect(error.message).toContain(`log in as role ${roleName}`);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await slowAdapter.close();
      await silent.close();
    }
  });

  it("unreachable server during login check unavailable", async () => {
    const { roleName, call, first } = await roleWithFirstVersion();
    const pending = await adapter.createPending(call, { rotationId: "rot_refused", current: first });
    const silent = await startSilentServer();
    const port = silent.port;
    await silent.close();

    const error = await caught(adapter.testPending(staticCall(roleName, {}, { port }), toRef(pending)));

    expect(error).toBeInstanceOf(UpstreamUnavailable);
    expect(error.message).toContain("ECONNREFUSED");
    expectNoSecrets(error, pending.data["password"]!);
  });

  it("renew and revoke leave role alone", async (context) => {
    skipUnlessPasswordsChecked(context);
    const { roleName, password, call } = await roleWithFirstVersion();

    await adapter.renew(call, { upstreamLeaseId: roleName }, new Date(Date.now() + HOUR_MS));
    await adapter.revoke(call, { upstreamLeaseId: roleName });

    expect(await loginResult(roleName, password)).toBe("ok");
  });

  it("adapter without sealer rejects static calls", async () => {
    const roleName = await fixture.createRole(knownPassword());
    const unsealed = new PostgresAdapter();

    const error = await caught(unsealed.createPending(staticCall(roleName), { rotationId: null, current: null, value: { password: knownPassword() } }));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain("without a value sealer");
  });
});
