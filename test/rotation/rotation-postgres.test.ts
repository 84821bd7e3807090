import { randomBytes } from "node:crypto";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRotationTick } from "../../broker/rotation/rotation-scheduler.js";
import { createPostgresFixture, type PostgresFixture, TEST_POSTGRES_URL } from "../support/postgres-fixture.js";
import { expectProblem, invalidParamNames, uniqueName } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { createGrant, createSecret, obtainCredential, readLease, workloadWithToken } from "../credentials/credential-fixtures.js";

/**
 * Static PostgreSQL role passwords rotated by the engine against the real server of
 * TEST_POSTGRES_URL, which checks passwords, so that a login with an old password fails.
 */
describe.skipIf(!TEST_POSTGRES_URL)("rotation of a static PostgreSQL role", () => {
  let fixture: PostgresFixture;
  let broker: TestBroker;
  let adminSecret: string;

  beforeAll(async () => {
    fixture = await createPostgresFixture(TEST_POSTGRES_URL!);
    broker = await startTestBroker();
    adminSecret = (await createSecret(broker, { name: `db/${uniqueName("admin")}`, value: { password: fixture.admin.password }, generate: undefined })).name;
  });

  afterAll(async () => {
    await broker?.close();
    await fixture?.close();
  });

  async function staticRoleSecret(): Promise<{ secret: any; role: string; password: string }> {
    const password = randomBytes(18).toString("base64url");
    const role = await fixture.createRole(password);
    const secret = await createSecret(broker, {
      name: `db/${uniqueName("app-role")}`,
      adapter: "postgres",
      kind: "static",
      generate: undefined,
      value: { password },
      settings: fixture.staticSettings(role, { connection: { password_secret: adminSecret } }),
    });
    return { secret, role, password };
  }

  it("compromise rotation changes the password and revokes the old leases", async () => {
    const { secret, role, password } = await staticRoleSecret();
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });
    const old = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(old.data).toEqual({ username: role, password });

    const started = await broker.request("POST", `/v1/secrets/${secret.id}/rotate`, { token: broker.tokens.operator, body: { reason: "password in a log", mode: "compromise" } });
    expect(started.status, started.text).toBe(202);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);

    expect(await fixture.loginCode(role, password)).toBe("28P01");
    const fresh = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(fresh.version).toBe("2");
    expect(fresh.data.password).not.toBe(password);
    expect(await fixture.loginCode(role, fresh.data.password)).toBe("ok");
    expect((await readLease(broker, old.lease_id)).status).toBe("revoked");
  });

  it("a failed test step puts the old password back", async () => {
    const { secret, role, password } = await staticRoleSecret();
    // NOLOGIN lets ALTER ROLE ... PASSWORD succeed but makes the login of the test step fail.
    await fixture.sql.unsafe(`alter role ${role} nologin`);

    await broker.request("POST", `/v1/secrets/${secret.id}/rotate`, { token: broker.tokens.operator });
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["rolled_back"]);

    await fixture.sql.unsafe(`alter role ${role} login`);
    expect(await fixture.loginCode(role, password)).toBe("ok");
    const [record] = (await broker.request("GET", `/v1/secrets/${secret.id}/rotations`, { token: broker.tokens.auditor })).json.items;
    expect(record).toMatchObject({ status: "rolled_back", failed_step: "test" });
    expect((await broker.request("GET", `/v1/secrets/${secret.id}`, { token: broker.tokens.auditor })).json.current_version).toBe("1");
  });

  it("a static PostgreSQL secret needs the role's current password", async () => {
    const role = await fixture.createRole(randomBytes(18).toString("base64url"));
    const response = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name: `db/${uniqueName("no-value")}`, adapter: "postgres", kind: "static", owner: "team", settings: fixture.staticSettings(role, { connection: { password_secret: adminSecret } }) },
    });
    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual(["value"]);

    const wrong = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: {
        name: `db/${uniqueName("wrong-value")}`,
        adapter: "postgres",
        kind: "static",
        owner: "team",
        value: { password: "not-the-password-of-this-role" },
        settings: fixture.staticSettings(role, { connection: { password_secret: adminSecret } }),
      },
    });
    expectProblem(wrong, 502, "upstream_rejected");
    expect(wrong.text).not.toContain("not-the-password-of-this-role");
  });

  it("a too-short password is a 400 naming value.password, and nothing is written", async () => {
    const role = await fixture.createRole(randomBytes(18).toString("base64url"));
    const name = `db/${uniqueName("short-value")}`;

    const response = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name, adapter: "postgres", kind: "static", owner: "team", value: { password: "short-pw-1" }, settings: fixture.staticSettings(role, { connection: { password_secret: adminSecret } }) },
    });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual(["value.password"]);
    expect(response.text).not.toContain("short-pw-1");
    expect(await broker.query(`select id from secrets where name = '${name}'`)).toEqual([]);
  });
});
