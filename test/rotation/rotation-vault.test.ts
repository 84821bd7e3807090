import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runRotationTick } from "../../broker/rotation/rotation-scheduler.js";
import { createGrant, createSecret, obtainCredential, workloadWithToken } from "../credentials/credential-fixtures.js";
import { auditEvents, expectProblem, uniqueName } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { SECRET_ID_SECRET, startVaultFixture, type VaultFixture } from "../support/vault-standin/vault-fixture.js";

/**
 * Rotation of Vault static secrets by the broker's engine, through the rotation routes,
 * against the stand-in: KV v2 with check-and-set and rollback, and database static roles.
 */
describe("rotation of Vault secrets", () => {
  let broker: TestBroker;
  let vault: VaultFixture;

  beforeAll(async () => {
    broker = await startTestBroker();
    vault = await startVaultFixture({ clock: broker.clock });
    await createSecret(broker, { name: SECRET_ID_SECRET, value: { secret_id: vault.appRole.secretId }, generate: undefined });
  });

  afterAll(async () => {
    await broker?.close();
    await vault?.stop();
  });

  beforeEach(() => {
    vault.standin.afterCall = undefined;
    vault.standin.loseReply = undefined;
    vault.standin.sealed = false;
  });

  /** A KV path with version 1 {username, password}, and a broker secret whose first version is that version. */
  async function kvSecret(): Promise<{ secret: any; path: string }> {
    const path = `prod/${uniqueName("orders")}`;
    vault.standin.kv.put(path, { username: "orders_app", password: "first-password" });
    const secret = await createSecret(broker, {
      name: `vault/${uniqueName("orders")}`,
      adapter: "vault",
      kind: "static",
      generate: { length: 32, field: "password" },
      settings: vault.settings({ kv: { mount: "secret", path } }),
    });
    return { secret, path };
  }

  /** A new database static role in the stand-in, and a broker secret whose first version is its password. */
  async function staticRoleSecret(role: string): Promise<any> {
    vault.standin.database.addStaticRole(role, role.replaceAll("-", "_"));
    return createSecret(broker, {
      name: `vault/${uniqueName(role)}`,
      adapter: "vault",
      kind: "static",
      generate: undefined,
      settings: vault.settings({ static_role: { name: role } }),
    });
  }

  async function rotate(secretId: string): Promise<string[]> {
    const started = await broker.request("POST", `/v1/secrets/${secretId}/rotate`, { token: broker.tokens.operator, body: { reason: "scheduled test" } });
    expect(started.status, started.text).toBe(202);
    return (await runRotationTick(broker.deps, "test")).outcomes;
  }

  async function latestRotation(secretId: string): Promise<any> {
    return (await broker.request("GET", `/v1/secrets/${secretId}/rotations`, { token: broker.tokens.auditor })).json.items[0];
  }

  async function obtainCredentialFor(secretName: string): Promise<any> {
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secretName });
    return obtainCredential(broker, accessToken, { secret: secretName });
  }

  async function currentVersion(secretId: string): Promise<string> {
    return (await broker.request("GET", `/v1/secrets/${secretId}`, { token: broker.tokens.auditor })).json.current_version;
  }

  it("creation records Vault's version", async () => {
    const { secret, path } = await kvSecret();

    expect(secret.current_version).toBe("1");
    expect(vault.standin.kv.currentVersion(path)).toBe(1);
    expect(vault.standin.callsTo(`secret/data/${path}`).filter((call) => call.method === "POST")).toHaveLength(0);
  });

  it("creation with a value writes it with cas", async () => {
    const path = `prod/${uniqueName("new")}`;
    const secret = await createSecret(broker, {
      name: `vault/${uniqueName("new")}`,
      adapter: "vault",
      kind: "static",
      generate: undefined,
      value: { api_key: "given-by-operator" },
      settings: vault.settings({ kv: { mount: "secret", path } }),
    });

    expect(secret.current_version).toBe("1");
    expect(vault.standin.kv.readData(path, 1)).toEqual({ api_key: "given-by-operator" });
    expect(vault.standin.callsTo(`secret/data/${path}`).find((call) => call.method === "POST")!.body).toEqual({ options: { cas: 0 } });
  });

  it("creation of a missing key fails without a row", async () => {
    const response = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name: `vault/${uniqueName("missing")}`, adapter: "vault", kind: "static", owner: "team", settings: vault.settings({ kv: { mount: "secret", path: "prod/absent" } }) },
    });

    expect(response.status, response.text).toBe(502);
    expect(response.json.code).toBe("upstream_not_found");
    expect(response.json.detail).toMatch(/Vault has no secret at .*secret\/data\/prod\/absent/);
  });

  it("rotation writes a new version with cas", async () => {
    const { secret, path } = await kvSecret();
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });

    expect(await rotate(secret.id)).toEqual(["completed"]);

    expect(await currentVersion(secret.id)).toBe("2");
    const issued = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(issued.version).toBe("2");
    expect(issued.data).toEqual(vault.standin.kv.readData(path, 2));
    expect(issued.data.username).toBe("orders_app");
    expect(issued.data.password).toMatch(/^[A-Za-z0-9]{32}$/);
    const writes = vault.standin.callsTo(`secret/data/${path}`).filter((call) => call.method === "POST");
    expect(writes.at(-1)!.body).toEqual({ options: { cas: 1 } });
  });

  it("cas mismatch stops without overwriting", async () => {
    const { secret, path } = await kvSecret();
    vault.standin.kv.put(path, { username: "orders_app", password: "written-by-someone-else" });

    expect(await rotate(secret.id)).toEqual(["rolled_back"]);

    expect(await latestRotation(secret.id)).toMatchObject({ status: "rolled_back", failed_step: "create" });
    expect((await latestRotation(secret.id)).error).toMatch(/someone else wrote .* after version 1 .*; nothing was overwritten/);
    expect((await latestRotation(secret.id)).error).toContain(`\`secrets-broker secret resync ${secret.name}\``);
    expect(vault.standin.kv.currentVersion(path)).toBe(2);
    expect(vault.standin.kv.readData(path)!["password"]).toBe("written-by-someone-else");
    expect(await currentVersion(secret.id)).toBe("1");
  });

  describe("re-sync", () => {
    function resync(secretId: string, token = broker.tokens.operator) {
      return broker.request("POST", `/v1/secrets/${secretId}/resync`, { token, body: { reason: "written by the DBA" } });
    }

    async function versions(secretId: string): Promise<{ version: string; stage: string; fingerprint: string }[]> {
      return (await broker.request("GET", `/v1/secrets/${secretId}/versions`, { token: broker.tokens.auditor })).json.items;
    }

    it("records Vault's latest version, then rotates", async () => {
      const { secret, path } = await kvSecret();
      vault.standin.kv.put(path, { username: "orders_app", password: "written-by-someone-else" });
      expect(await rotate(secret.id)).toEqual(["rolled_back"]);

      const resynced = await resync(secret.id);

      expect(resynced.status, resynced.text).toBe(200);
      expect(resynced.json).toMatchObject({ secret_id: secret.id, from_version: "1", to_version: "2", changed: true });
      const matches = await broker.request("POST", "/v1/fingerprints", {
        token: broker.tokens.operator,
        body: { value: { username: "orders_app", password: "written-by-someone-else" } },
      });
      expect(matches.json.fingerprint).toBe(resynced.json.fingerprint);
      expect(matches.json.matches).toEqual([{ secret_id: secret.id, name: secret.name, version: "2", stage: "current" }]);
      expect((await versions(secret.id)).map(({ version, stage }) => [version, stage]).sort()).toEqual([
        ["1", "previous"],
        ["2", "current"],
      ]);
      const event = (await auditEvents(broker)).find((entry: any) => entry.action === "secret.resync" && entry.target === secret.id);
      expect(event!.details).toMatchObject({ from_version: "1", to_version: "2", reason: "written by the DBA", fingerprint: resynced.json.fingerprint });

      expect(await rotate(secret.id)).toEqual(["completed"]);
      expect(await currentVersion(secret.id)).toBe("3");
      expect(vault.standin.kv.readData(path, 3)!["password"]).not.toBe("written-by-someone-else");
    });

    it("without a change writes nothing", async () => {
      const { secret } = await kvSecret();
      const eventsBefore = (await auditEvents(broker)).length;

      const resynced = await resync(secret.id);

      expect(resynced.status, resynced.text).toBe(200);
      expect(resynced.json).toEqual({ secret_id: secret.id, from_version: "1", to_version: "1", fingerprint: null, changed: false });
      expect(await versions(secret.id)).toHaveLength(1);
      expect(await auditEvents(broker)).toHaveLength(eventsBefore);
    });

    it("records a static role Vault rotated itself", async () => {
      const secret = await staticRoleSecret("reports-app");
      broker.clock.advance(1000);
      await fetch(`${vault.standin.address}/v1/database/rotate-role/reports-app`, { method: "POST", headers: { "x-vault-token": vault.rootToken } });

      const resynced = await resync(secret.id);

      expect(resynced.status, resynced.text).toBe(200);
      expect(resynced.json.changed).toBe(true);
      expect(resynced.json.to_version).not.toBe(secret.current_version);
      expect(await currentVersion(secret.id)).toBe(resynced.json.to_version);
    });

    it("refused while a rotation runs", async () => {
      const { secret } = await kvSecret();
      const started = await broker.request("POST", `/v1/secrets/${secret.id}/rotate`, { token: broker.tokens.operator });
      expect(started.status, started.text).toBe(202);

      const resynced = await resync(secret.id);

      expectProblem(resynced, 409, "conflict");
      expect(resynced.json.rotation_id).toBe(started.json.id);
      expect(await runRotationTick(broker.deps, "test")).toMatchObject({ outcomes: ["completed"] });
    });

    it("refused for secrets without upstream versions", async () => {
      const local = await createSecret(broker, { name: `vault/${uniqueName("local")}`, generate: { length: 32 } });

      expectProblem(await resync(local.id), 409, "invalid_state");
      expectProblem(await resync(local.id, broker.tokens.auditor), 403, "forbidden");
      expectProblem(await resync("sec_000000000000000000000000"), 404, "not_found");
    });
  });

  it("second secret on one KV path refused", async () => {
    const { secret } = await kvSecret();

    const again = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: { name: `vault/${uniqueName("again")}`, adapter: "vault", kind: "static", owner: "team-orders", settings: secret.settings },
    });

    expect(again.status, again.text).toBe(409);
    expect(again.json.detail).toContain(`secret '${secret.name}' (${secret.id}) already refers to`);
  });

  it("generate field missing from the Vault secret stops", async () => {
    const { secret, path } = await kvSecret();
    const patched = await broker.request("PATCH", `/v1/secrets/${secret.id}`, { token: broker.tokens.operator, body: { generate: { length: 32, field: "value" } } });
    expect(patched.status, patched.text).toBe(200);

    expect(await rotate(secret.id)).toEqual(["rolled_back"]);

    const rotation = await latestRotation(secret.id);
    expect(rotation).toMatchObject({ status: "rolled_back", failed_step: "create" });
    expect(rotation.error).toContain("generate.field 'value'");
    expect(rotation.error).toContain("username, password");
    expect(vault.standin.kv.currentVersion(path)).toBe(1);
  });

  it("rotation without a generate policy names the PATCH", async () => {
    const path = `prod/${uniqueName("no-policy")}`;
    vault.standin.kv.put(path, { username: "orders_app", password: "first-password" });
    const secret = await createSecret(broker, {
      name: `vault/${uniqueName("no-policy")}`,
      adapter: "vault",
      kind: "static",
      generate: undefined,
      settings: vault.settings({ kv: { mount: "secret", path } }),
    });

    expect(await rotate(secret.id)).toEqual(["rolled_back"]);

    const rotation = await latestRotation(secret.id);
    expect(rotation).toMatchObject({ status: "rolled_back", failed_step: "create" });
    expect(rotation.error).toContain(`has no generate policy, so a rotation cannot make a new value; set one that names the field holding the credential with PATCH /v1/secrets/${secret.id}`);
    expect(vault.standin.kv.currentVersion(path)).toBe(1);
  });

  it("failed test step restores the previous value", async () => {
    const { secret, path } = await kvSecret();
    const previous = vault.standin.kv.readData(path, 1);
    // Someone deletes the new version between the write and the read-back.
    vault.standin.afterCall = (call) => {
      if (call.method === "POST" && call.path === `secret/data/${path}`) {
        vault.standin.afterCall = undefined;
        vault.standin.kv.softDelete(path, [2]);
      }
    };

    expect(await rotate(secret.id)).toEqual(["rolled_back"]);

    expect(await latestRotation(secret.id)).toMatchObject({ status: "rolled_back", failed_step: "test" });
    expect((await latestRotation(secret.id)).error).toMatch(/version 2 was deleted/);
    expect(vault.standin.kv.currentVersion(path)).toBe(3);
    expect(vault.standin.kv.readData(path, 3)).toEqual(previous);
    expect(await currentVersion(secret.id)).toBe("1");
    const rotation = await latestRotation(secret.id);
    expect(rotation.error).not.toContain("Rollback:");
    const event = (await auditEvents(broker)).find((entry: any) => entry.action === "rotation.rollback" && entry.target === rotation.id);
    expect(event!.details).toMatchObject({ restored: true, discard_error: null });

    // Version 3 contains the current value again, so the next rotation writes on it.
    expect(await rotate(secret.id)).toEqual(["completed"]);
    expect(vault.standin.kv.currentVersion(path)).toBe(4);
    expect(await currentVersion(secret.id)).toBe("4");
  });

  it("retried create adopts its own lost write", async () => {
    const { secret, path } = await kvSecret();
    vault.standin.loseReply = (call) => call.method === "POST" && call.path === `secret/data/${path}`;

    expect(await rotate(secret.id)).toEqual(["retry_later"]);
    vault.standin.loseReply = undefined;
    expect(vault.standin.kv.currentVersion(path)).toBe(2);
    broker.clock.advance(60_000);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);

    expect(vault.standin.kv.currentVersion(path)).toBe(2);
    expect(await currentVersion(secret.id)).toBe("2");
    const rotation = await latestRotation(secret.id);
    expect(rotation.steps.map((step: { step: string; outcome: string }) => `${step.step}:${step.outcome}`)).toEqual([
      "create:failure",
      "create:success",
      "set:success",
      "test:success",
      "finish:success",
    ]);
    expect(vault.standin.callsTo(`secret/data/${path}`).filter((call) => call.method === "POST")).toHaveLength(2);
    const issued = await obtainCredentialFor(secret.name);
    expect(issued.version).toBe("2");
    expect(issued.data).toEqual(vault.standin.kv.readData(path, 2));
    expect(issued.data.password).not.toBe("first-password");
  });

  it("sealed Vault retries the create step later", async () => {
    const { secret, path } = await kvSecret();
    vault.standin.sealed = true;

    expect(await rotate(secret.id)).toEqual(["retry_later"]);

    vault.standin.sealed = false;
    broker.clock.advance(60_000);
    expect((await runRotationTick(broker.deps, "test")).outcomes).toEqual(["completed"]);
    expect(vault.standin.kv.currentVersion(path)).toBe(2);
  });

  it("static role rotates through rotate-role", async () => {
    const secret = await createSecret(broker, {
      name: `vault/${uniqueName("orders-static")}`,
      adapter: "vault",
      kind: "static",
      generate: undefined,
      settings: vault.settings({ static_role: { name: "orders-app" } }),
    });
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });
    const before = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(before.data).toEqual({ username: "orders_app", password: vault.standin.database.staticPassword("orders-app") });
    broker.clock.advance(1000);

    expect(await rotate(secret.id)).toEqual(["completed"]);

    const after = await obtainCredential(broker, accessToken, { secret: secret.name });
    expect(after.data.password).toBe(vault.standin.database.staticPassword("orders-app"));
    expect(after.data.password).not.toBe(before.data.password);
    expect(after.version).toBe(await currentVersion(secret.id));
    expect(after.version).not.toBe(before.version);
    expect(vault.standin.callsTo("database/rotate-role/orders-app")).toHaveLength(1);
  });

  it("static role rollback says the password stays", async () => {
    const secret = await staticRoleSecret("billing-app");
    broker.clock.advance(1000);
    // Vault rotates the role again between the create step's read and the test step's.
    vault.standin.afterCall = (call) => {
      if (call.path === "database/static-creds/billing-app" && vault.standin.callsTo("database/rotate-role/billing-app").length === 1) {
        vault.standin.afterCall = undefined;
        broker.clock.advance(1000);
        vault.standin.database.rotateStaticRole("billing-app");
      }
    };

    expect(await rotate(secret.id)).toEqual(["rolled_back"]);

    const rotation = await latestRotation(secret.id);
    expect(rotation).toMatchObject({ status: "rolled_back", failed_step: "test" });
    expect(rotation.error).toMatch(/was rotated again at .* after the pending rotation at .*; rotate again Rollback: Vault keeps no earlier password of .*database\/static-creds\/billing-app, so the previous password was not restored/);
    expect(rotation.error).toContain(`\`secrets-broker secret resync ${secret.name}\``);
    expect(rotation.steps.at(-1).error).not.toContain("Rollback:");
    const event = (await auditEvents(broker)).find((entry: any) => entry.action === "rotation.rollback" && entry.target === rotation.id);
    expect(event!.details).toMatchObject({ restored: false, discarded_version: rotation.to_version, current_version: secret.current_version });
    expect(broker.logs.join("\n")).toContain("rotation rolled back, but the upstream keeps the pending value in use");

    const resynced = await broker.request("POST", `/v1/secrets/${secret.id}/resync`, { token: broker.tokens.operator });
    expect(resynced.status, resynced.text).toBe(200);
    expect(await currentVersion(secret.id)).toBe(resynced.json.to_version);
    const issued = await obtainCredentialFor(secret.name);
    expect(issued.data.password).toBe(vault.standin.database.staticPassword("billing-app"));
    expect(issued.version).toBe(resynced.json.to_version);
  });

  it("rotation logs and audit carry no values", async () => {
    const text = broker.logs.join("\n") + (await broker.request("GET", "/v1/audit/events")).text;

    expect(text).not.toContain("first-password");
    expect(text).not.toContain("written-by-someone-else");
    expect(text).not.toContain(vault.appRole.secretId);
    expect(text).not.toContain(String(vault.standin.database.staticPassword("orders-app")));
  });
});
