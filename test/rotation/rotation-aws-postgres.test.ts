import { randomBytes } from "node:crypto";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rotationToken } from "../../adapters/aws-secrets-manager/staged-rotation.js";
import { runRotationTick } from "../../broker/rotation/rotation-scheduler.js";
import { createGrant, createSecret, obtainCredential, readLease, workloadWithToken } from "../credentials/credential-fixtures.js";
import { labelsOf, seedSecret, standinAdapter, standinSettings, startAwsStandin } from "../support/aws-standin/aws-fixture.js";
import type { AwsStandin } from "../support/aws-standin/standin-server.js";
import { createPostgresFixture, type PostgresFixture, TEST_POSTGRES_URL } from "../support/postgres-fixture.js";
import { expectProblem, invalidParamNames, registerSnapshot, uniqueName } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

/**
 * Database secrets kept in AWS Secrets Manager: the broker rotates the value in the
 * stand-in and the password of a real PostgreSQL role (TEST_POSTGRES_URL, which checks
 * passwords), so that a login with the old password fails.
 */
describe.skipIf(!TEST_POSTGRES_URL)("rotation of an AWS database secret", () => {
  let fixture: PostgresFixture;
  let standin: AwsStandin;
  let broker: TestBroker;
  let adminSecret: string;

  beforeAll(async () => {
    fixture = await createPostgresFixture(TEST_POSTGRES_URL!);
    standin = await startAwsStandin();
    broker = await startTestBroker({ adapters: [standinAdapter(standin)] });
    adminSecret = (await createSecret(broker, { name: `db/${uniqueName("admin")}`, value: { password: fixture.admin.password }, generate: undefined })).name;
  });

  afterAll(async () => {
    await broker?.close();
    await standin?.close();
    await fixture?.close();
  });

  /** Creates a login role, its AWS database secret and the broker secret for it, granted to a new workload. */
  async function databaseSecret(oldLeases: "grace" | "revoke") {
    const password = randomBytes(18).toString("base64url");
    const role = await fixture.createRole(password);
    const awsName = `prod/${uniqueName("orders-db")}`;
    const stored = seedSecret(standin, awsName, { engine: "postgres", host: fixture.host, port: fixture.port, dbname: fixture.database, username: role, password });
    const secret = await createSecret(broker, {
      name: `aws/${uniqueName("orders-db")}`,
      adapter: "aws-secrets-manager",
      generate: undefined,
      rotation: { max_age: 30 * 86_400, old_leases: oldLeases },
      settings: standinSettings(standin, awsName, { database: fixture.staticSettings(role, { connection: { password_secret: adminSecret } }) }),
    });
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });
    return { role, password, stored, secret, accessToken, firstVersion: [...stored.versions.keys()][0]! };
  }

  async function rotate(secretId: string): Promise<string> {
    const response = await broker.request("POST", `/v1/secrets/${secretId}/rotate`, { token: broker.tokens.operator });
    expect(response.status, response.text).toBe(202);
    return response.json.id;
  }

  it("settings patch keeps the database block", async () => {
    const { secret } = await databaseSecret("grace");
    const { database: _database, ...withoutDatabase } = secret.settings;

    const response = await broker.request("PATCH", `/v1/secrets/${secret.id}`, { token: broker.tokens.operator, body: { settings: withoutDatabase } });

    expect(response.status, response.text).toBe(400);
    expect(response.json.detail).toContain("settings.database");
    const stored = await broker.request("GET", `/v1/secrets/${secret.id}`);
    expect(stored.json.settings.database).toEqual(secret.settings.database);
  });

  it("revoke policy: old password and lease end at finish", async () => {
    const { role, password, secret, accessToken, stored, firstVersion } = await databaseSecret("revoke");
    const old = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(await fixture.loginCode(old.data.username, old.data.password)).toBe("ok");

    const rotationId = await rotate(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);

    expect(await fixture.loginCode(role, password)).toBe("28P01");
    const fresh = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(fresh.version).toBe(rotationToken(rotationId));
    expect(fresh.data).toMatchObject({ username: role, dbname: fixture.database, port: String(fixture.port) });
    expect(await fixture.loginCode(role, fresh.data.password)).toBe("ok");
    expect((await readLease(broker, old.lease_id)).status).toBe("revoked");
    expect(labelsOf(stored)[firstVersion]).toEqual(["AWSPREVIOUS"]);
  });

  it("grace policy: old lease stays live", async () => {
    const { secret, accessToken } = await databaseSecret("grace");
    const old = await obtainCredential(broker, accessToken, { secret: secret.name });

    await rotate(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);

    expect((await readLease(broker, old.lease_id)).status).toBe("active");
    // The single-user strategy rotates one login role, so the old password stops working at the set step even under grace.
    expect(await fixture.loginCode(old.data.username, old.data.password)).toBe("28P01");
  });

  it("failed login test puts the old password back", async () => {
    const { role, password, secret, stored, firstVersion } = await databaseSecret("revoke");
    // NOLOGIN lets ALTER ROLE ... PASSWORD succeed but makes the test step's login fail.
    await fixture.sql.unsafe(`alter role ${role} nologin`);

    const rotationId = await rotate(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["rolled_back"]);

    await fixture.sql.unsafe(`alter role ${role} login`);
    expect(await fixture.loginCode(role, password)).toBe("ok");
    const record = (await broker.request("GET", `/v1/rotations/${rotationId}`, { token: broker.tokens.auditor })).json;
    expect(record).toMatchObject({ status: "rolled_back", failed_step: "test" });
    expect(labelsOf(stored)).toEqual({ [firstVersion]: ["AWSCURRENT"], [rotationToken(rotationId)]: [] });
  });

  it("username other than the role rejected", async () => {
    const { secret, stored } = await databaseSecret("revoke");
    const current = [...stored.versions.values()][0]!;
    current.secretString = JSON.stringify({ ...JSON.parse(current.secretString!), username: "someone_else" });

    const rotationId = await rotate(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["rolled_back"]);

    const record = (await broker.request("GET", `/v1/rotations/${rotationId}`, { token: broker.tokens.auditor })).json;
    expect(record.failed_step).toBe("create");
    expect(record.error).toContain("database.role.name");
  });

  it.each([
    ["username other than role.name", { value: { username: "someone_else" } }, "settings.database.role.name", "other than database.role.name"],
    ["role that does not exist", { role: "sbt_no_such_role" }, "settings.database.role.name", "does not exist"],
    ["the admin role itself", { role: "admin" }, "settings.database.role.name", "the admin role the broker logs in as"],
    ["value that is not JSON", { value: "plain-text" }, "settings.database", "is not a JSON object"],
    ["value without a password", { value: { password: undefined } }, "settings.database", "no string field password"],
    ["password_secret naming nothing", { connection: { password_secret: "db/no-such-admin" } }, "settings.database.connection.password_secret", "which does not exist"],
    ["password_field the secret lacks", { connection: { password_field: "no_such_field" } }, "settings.database.connection.password_field", "has no field no_such_field"],
  ])("registration rejects %s", async (_case, change: Record<string, any>, field, reason) => {
    const password = randomBytes(18).toString("base64url");
    const role = await fixture.createRole(password);
    const awsName = `prod/${uniqueName("bad-db")}`;
    const roleName = change["role"] === "admin" ? fixture.admin.username : (change["role"] ?? role);
    const value = typeof change["value"] === "string" ? change["value"] : { username: roleName, password, ...change["value"] };
    seedSecret(standin, awsName, value);
    const database = fixture.staticSettings(roleName, { connection: { password_secret: adminSecret, ...change["connection"] } });
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name: `aws/${uniqueName("bad-db")}`, adapter: "aws-secrets-manager", owner: "team-orders", settings: standinSettings(standin, awsName, { database }) },
    });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
    expect(response.json.detail).toContain(reason);
    expect(response.text).not.toContain(password);
    expect(response.text).not.toContain(fixture.admin.password);
    expect(await registerSnapshot(broker)).toEqual(before);
  });
});
