import { randomBytes } from "node:crypto";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rotationToken } from "../../adapters/aws-secrets-manager/staged-rotation.js";
import { ROTATION_RETRY_DELAY_MS } from "../../broker/rotation/rotation-runner.js";
import { runRotationTick } from "../../broker/rotation/rotation-scheduler.js";
import { createGrant, createSecret, obtainCredential, readLease, workloadWithToken } from "../credentials/credential-fixtures.js";
import { labelsOf, seedSecret, standinAdapter, standinSettings, startAwsStandin } from "../support/aws-standin/aws-fixture.js";
import type { AwsStandin } from "../support/aws-standin/standin-server.js";
import { createPostgresFixture, type PostgresFixture, TEST_POSTGRES_URL } from "../support/postgres-fixture.js";
import { auditEvents, expectProblem, invalidParamNames, registerSnapshot, uniqueName } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

/** SQLSTATE invalid_password: the server rejected the login's password. */
const WRONG_PASSWORD = "28P01";

/**
 * AWS database secrets with the alternating-users strategy, against a real PostgreSQL
 * server (TEST_POSTGRES_URL): each rotation sets the password of the role that is not in
 * AWSCURRENT, so the old login keeps working under grace and ends when leases are revoked.
 */
describe.skipIf(!TEST_POSTGRES_URL)("alternating-users rotation of an AWS database secret", () => {
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

  /** Creates a role and its clone, the AWS secret naming the role, and the broker secret, granted to a new workload. */
  async function alternatingSecret(oldLeases: "grace" | "revoke") {
    const password = randomBytes(18).toString("base64url");
    const role = await fixture.createRole(password);
    const clonePassword = randomBytes(18).toString("base64url");
    const clone = await fixture.createRole(clonePassword);
    const awsName = `prod/${uniqueName("orders-db")}`;
    const stored = seedSecret(standin, awsName, { engine: "postgres", host: fixture.host, port: fixture.port, dbname: fixture.database, username: role, password });
    const secret = await createSecret(broker, {
      name: `aws/${uniqueName("orders-db")}`,
      adapter: "aws-secrets-manager",
      generate: undefined,
      rotation: { max_age: 30 * 86_400, old_leases: oldLeases },
      settings: standinSettings(standin, awsName, {
        database: fixture.staticSettings(role, { connection: { password_secret: adminSecret } }),
        rotation_strategy: "alternating_users",
        clone_username: clone,
      }),
    });
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });
    return { role, clone, clonePassword, password, stored, secret, accessToken, firstVersion: [...stored.versions.keys()][0]! };
  }

  async function rotate(secretId: string, mode: "normal" | "compromise" = "normal"): Promise<string> {
    const response = await broker.request("POST", `/v1/secrets/${secretId}/rotate`, { token: broker.tokens.operator, body: { reason: "test", mode } });
    expect(response.status, response.text).toBe(202);
    return response.json.id;
  }

  async function rotationRecord(rotationId: string): Promise<any> {
    return (await broker.request("GET", `/v1/rotations/${rotationId}`, { token: broker.tokens.auditor })).json;
  }

  it("grace: old and new passwords both log in", async () => {
    const { role, clone, clonePassword, password, secret, accessToken, stored, firstVersion } = await alternatingSecret("grace");
    const old = await obtainCredential(broker, accessToken, { secret: secret.name });
    // Registration's check that the admin may alter the clone is rolled back.
    expect(await fixture.loginCode(clone, clonePassword)).toBe("ok");

    const rotationId = await rotate(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);

    const fresh = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(fresh.version).toBe(rotationToken(rotationId));
    expect(fresh.data.username).toBe(clone);
    expect(fresh.data.password).not.toBe(password);
    expect(await fixture.loginCode(clone, fresh.data.password)).toBe("ok");
    expect(old.data.username).toBe(role);
    expect(await fixture.loginCode(role, password)).toBe("ok");
    expect((await readLease(broker, old.lease_id)).status).toBe("active");
    expect(labelsOf(stored)[firstVersion]).toEqual(["AWSPREVIOUS"]);
  });

  it("second rotation flips back to the first role", async () => {
    const { role, clone, password, secret, accessToken } = await alternatingSecret("grace");
    await rotate(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);
    const first = await obtainCredential(broker, accessToken, { secret: secret.name });

    const rotationId = await rotate(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);

    const second = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(second.version).toBe(rotationToken(rotationId));
    expect(second.data.username).toBe(role);
    expect(await fixture.loginCode(role, second.data.password)).toBe("ok");
    expect(await fixture.loginCode(role, password)).toBe(WRONG_PASSWORD);
    expect(first.data.username).toBe(clone);
    expect(await fixture.loginCode(clone, first.data.password)).toBe("ok");
  });

  it("revoke: old password fails after finish", async () => {
    const { role, clone, password, secret, accessToken } = await alternatingSecret("revoke");
    const old = await obtainCredential(broker, accessToken, { secret: secret.name });

    await rotate(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);

    const fresh = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(fresh.data.username).toBe(clone);
    expect(await fixture.loginCode(clone, fresh.data.password)).toBe("ok");
    expect(await fixture.loginCode(role, password)).toBe(WRONG_PASSWORD);
    expect((await readLease(broker, old.lease_id)).status).toBe("revoked");

    // The next rotation sets a password on the retired role again, and the clone keeps its own.
    await rotate(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);
    const next = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(next.data.username).toBe(role);
    expect(await fixture.loginCode(role, next.data.password)).toBe("ok");
    expect(await fixture.loginCode(clone, fresh.data.password)).toBe(WRONG_PASSWORD);
  });

  it("compromise under grace retires the old password", async () => {
    const { role, clone, password, secret, accessToken } = await alternatingSecret("grace");
    const old = await obtainCredential(broker, accessToken, { secret: secret.name });

    const rotationId = await rotate(secret.id, "compromise");
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);

    expect((await rotationRecord(rotationId)).status).toBe("completed");
    expect(await fixture.loginCode(role, password)).toBe(WRONG_PASSWORD);
    const fresh = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(fresh.data.username).toBe(clone);
    expect(await fixture.loginCode(clone, fresh.data.password)).toBe("ok");
    expect((await readLease(broker, old.lease_id)).status).toBe("revoked");
  });

  it("throttled retirement retried, then old password fails", async () => {
    const { role, password, secret, firstVersion } = await alternatingSecret("revoke");
    standin.failNext("GetSecretValue", { type: "ThrottlingException", message: "Rate exceeded" }, 3, (input) => input["VersionId"] === firstVersion);

    const rotationId = await rotate(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["retry_later"]);
    const waiting = await rotationRecord(rotationId);
    expect(waiting.status).toBe("in_progress");
    expect(waiting.steps.at(-1)).toMatchObject({ step: "finish", outcome: "failure" });
    broker.clock.advance(ROTATION_RETRY_DELAY_MS);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);

    expect(await fixture.loginCode(role, password)).toBe(WRONG_PASSWORD);
    expect((await rotationRecord(rotationId)).attempts).toBe(1);
  });

  it("failed retirement rolls back and is audited", async () => {
    const { role, clone, password, secret, stored, firstVersion } = await alternatingSecret("revoke");
    standin.failNext("GetSecretValue", { type: "AccessDeniedException", message: "not allowed to read the old version" }, 1, (input) => input["VersionId"] === firstVersion);

    const rotationId = await rotate(secret.id);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["rolled_back"]);

    expect(await rotationRecord(rotationId)).toMatchObject({ status: "rolled_back", failed_step: "finish" });
    expect(labelsOf(stored)[firstVersion]).toContain("AWSCURRENT");
    expect(await fixture.loginCode(role, password)).toBe("ok");
    const pending = JSON.parse(stored.versions.get(rotationToken(rotationId))!.secretString!);
    expect(pending.username).toBe(clone);
    expect(await fixture.loginCode(clone, pending.password)).toBe(WRONG_PASSWORD);
    const rollback = (await auditEvents(broker, "action=rotation.rollback")).find((event) => event.target === rotationId);
    expect(rollback?.details).toMatchObject({ failed_step: "finish", discard_error: null });
    expect(JSON.stringify(rollback)).not.toContain(password);
  });

  it.each([
    ["clone role that does not exist", { clone: "sbt_no_such_clone" }, "settings.clone_username", "does not exist"],
    ["superuser clone", { cloneAttributes: "login superuser" }, "settings.clone_username", "is a superuser"],
    ["admin role as clone", { clone: "admin" }, "settings.clone_username", "the admin role the broker logs in as"],
    ["admin that may not alter the clone", { weakAdmin: true }, "settings.clone_username", "may not set the password"],
    ["clone equal to role.name", { clone: "role" }, "settings.clone_username", "needs a second role"],
    ["clone_username without the strategy", { strategy: null }, "settings.clone_username", "applies with rotation_strategy alternating_users only"],
    ["unknown strategy", { strategy: "two_users" }, "settings.rotation_strategy", "must be one of single_user, alternating_users"],
    ["strategy without database", { noDatabase: true }, "settings.rotation_strategy", "applies to a database secret only"],
  ])("registration rejects %s", async (_case, change: Record<string, any>, field, reason) => {
    const password = randomBytes(18).toString("base64url");
    const role = await fixture.createRole(password);
    const clone = await cloneFor(change, role);
    const connection = change["weakAdmin"] ? await weakAdminConnection() : { password_secret: adminSecret };
    const awsName = `prod/${uniqueName("bad-db")}`;
    seedSecret(standin, awsName, { username: role, password });
    const settings = standinSettings(standin, awsName, {
      ...(change["noDatabase"] ? {} : { database: fixture.staticSettings(role, { connection }) }),
      ...(change["strategy"] === null ? {} : { rotation_strategy: change["strategy"] ?? "alternating_users" }),
      clone_username: clone,
    });
    const before = await registerSnapshot(broker);

    const response = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name: `aws/${uniqueName("bad-db")}`, adapter: "aws-secrets-manager", owner: "team-orders", settings },
    });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([field]);
    expect(response.json.detail).toContain(reason);
    expect(response.text).not.toContain(password);
    expect(response.text).not.toContain(fixture.admin.password);
    expect(await registerSnapshot(broker)).toEqual(before);
  });

  it("default clone_username is <role>_clone", async () => {
    const password = randomBytes(18).toString("base64url");
    const role = await fixture.createRole(password);
    const awsName = `prod/${uniqueName("default-clone")}`;
    seedSecret(standin, awsName, { username: role, password });

    const response = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: {
        name: `aws/${uniqueName("default-clone")}`,
        adapter: "aws-secrets-manager",
        owner: "team-orders",
        settings: standinSettings(standin, awsName, { database: fixture.staticSettings(role, { connection: { password_secret: adminSecret } }), rotation_strategy: "alternating_users" }),
      },
    });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual(["settings.clone_username"]);
    expect(response.json.detail).toContain(`role ${role}_clone does not exist`);
  });

  /** Returns the clone_username of a registration case: a named role, or a new role with the case's attributes. */
  async function cloneFor(change: Record<string, any>, role: string): Promise<string> {
    if (change["clone"] === "admin") {
      return fixture.admin.username;
    }
    if (change["clone"] === "role") {
      return role;
    }
    return change["clone"] ?? (await fixture.createRole(randomBytes(18).toString("base64url"), change["cloneAttributes"]));
  }

  /** Creates a login role without CREATEROLE and a local secret with its password, and returns them as admin connection settings. */
  async function weakAdminConnection(): Promise<Record<string, unknown>> {
    const password = randomBytes(18).toString("base64url");
    const username = await fixture.createRole(password);
    const secretName = (await createSecret(broker, { name: `db/${uniqueName("weak-admin")}`, value: { password }, generate: undefined })).name;
    return { username, password_secret: secretName };
  }
});
