import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { retryUpstreamRevocations } from "../../broker/leases/upstream-revoker.js";
import { auditEvents, expectProblem, invalidParamNames, rowCount, uniqueName } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { SECRET_ID_SECRET, startVaultFixture, TOKEN_SECRET, type VaultFixture } from "../support/vault-standin/vault-fixture.js";
import { createGrant, createSecret, obtainCredential, readLease, requestCredential, workloadWithToken } from "./credential-fixtures.js";

const MINUTE_MS = 60_000;

/**
 * Dynamic database credentials from Vault end to end: the broker in process, the real
 * node-vault client and the Vault stand-in on loopback, sharing the broker's frozen clock.
 */
describe("dynamic Vault credentials", () => {
  let broker: TestBroker;
  let vault: VaultFixture;
  let readonlySecret: string;
  let shortSecret: string;
  const issuedPasswords: string[] = [];

  beforeAll(async () => {
    broker = await startTestBroker();
    vault = await startVaultFixture({ clock: broker.clock });
    vault.standin.database.addRole("short", { defaultTtl: 600, maxTtl: 900 });
    await createSecret(broker, { name: SECRET_ID_SECRET, value: { secret_id: vault.appRole.secretId }, generate: undefined });
    await createSecret(broker, { name: TOKEN_SECRET, value: { token: vault.rootToken }, generate: undefined });
    readonlySecret = (await createVaultSecret("readonly")).name;
    shortSecret = (await createVaultSecret("short")).name;
  });

  afterAll(async () => {
    await broker?.close();
    await vault?.stop();
  });

  function createVaultSecret(role: string): Promise<any> {
    return createSecret(broker, {
      name: `db/${uniqueName(`vault-${role}`)}`,
      adapter: "vault",
      kind: "dynamic",
      generate: undefined,
      settings: vault.settings({ database: { role } }),
    });
  }

  async function credentialFor(secret: string, ttl: number): Promise<{ credential: any; accessToken: string; accountId: string }> {
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret });
    const credential = await obtainCredential(broker, accessToken, { secret, ttl });
    issuedPasswords.push(credential.data.password);
    return { credential, accessToken, accountId: workload.accountId };
  }

  it("issues a credential wrapping a Vault lease", async () => {
    const { credential } = await credentialFor(readonlySecret, 600);

    const lease = await readLease(broker, credential.lease_id);
    expect(lease.upstream_lease_id).toMatch(/^database\/creds\/readonly\/[0-9A-Za-z]{24}$/);
    expect(vault.standin.database.liveUsers.get(credential.data.username)).toBe(credential.data.password);
    expect(credential.lease_duration).toBe(600);
    expect(credential.version).toBeNull();
    // Vault granted 3600 s; the adapter shortened the lease to the broker's 600 s.
    expect(vault.standin.leases.get(lease.upstream_lease_id)!.expiresAt.toISOString()).toBe(credential.expires_at);
  });

  it("caps the lease at Vault's max TTL", async () => {
    const { credential } = await credentialFor(shortSecret, 900);

    expect(credential.lease_duration).toBe(600);
    expect(credential.warnings[0]).toMatch(/capped to 600s/);
  });

  it("renewal records what Vault granted", async () => {
    const { credential, accessToken } = await credentialFor(shortSecret, 600);
    broker.clock.advance(5 * MINUTE_MS);

    const renewed = await broker.request("POST", `/v1/leases/${credential.lease_id}/renew`, { token: accessToken, body: { increment: 900 } });

    expect(renewed.status, renewed.text).toBe(200);
    expect(renewed.json.lease_duration).toBe(600);
    expect(renewed.json.warnings.join(" ")).toMatch(/exceeded what the upstream granted; capped to 600s/);
    const lease = await readLease(broker, credential.lease_id);
    const upstream = vault.standin.leases.get(lease.upstream_lease_id)!;
    expect(lease.expires_at).toBe(upstream.expiresAt.toISOString());
    expect(lease.expires_at).toBe(renewed.json.expires_at);
    expect(vault.standin.callsTo("sys/leases/renew").at(-1)!.body).toMatchObject({ lease_id: lease.upstream_lease_id, increment: 900 });
  });

  it("renewal near Vault's max TTL gets the rest", async () => {
    const { credential, accessToken } = await credentialFor(shortSecret, 600);
    broker.clock.advance(5 * MINUTE_MS);
    await broker.request("POST", `/v1/leases/${credential.lease_id}/renew`, { token: accessToken, body: { increment: 900 } });
    broker.clock.advance(9 * MINUTE_MS);

    const renewed = await broker.request("POST", `/v1/leases/${credential.lease_id}/renew`, { token: accessToken, body: { increment: 300 } });

    expect(renewed.status, renewed.text).toBe(200);
    expect(renewed.json.lease_duration).toBe(60);
    expect((await readLease(broker, credential.lease_id)).expires_at).toBe(renewed.json.expires_at);
  });

  it("renewal of a lease Vault lost fails, lease unchanged", async () => {
    const { credential, accessToken } = await credentialFor(readonlySecret, 600);
    const before = await readLease(broker, credential.lease_id);
    await fetch(`${vault.standin.address}/v1/sys/leases/revoke`, {
      method: "PUT",
      headers: { "x-vault-token": vault.rootToken },
      body: JSON.stringify({ lease_id: before.upstream_lease_id, sync: true }),
    });

    const rejected = await broker.request("POST", `/v1/leases/${credential.lease_id}/renew`, { token: accessToken, body: { increment: 300 } });

    expectProblem(rejected, 502, "upstream_not_found");
    expect(rejected.json.detail).toMatch(/Vault no longer has lease database\/creds\/readonly\//);
    const after = await readLease(broker, credential.lease_id);
    expect(after.expires_at).toBe(before.expires_at);
    expect(after.renew_count).toBe(0);
  });

  it("revoke ends the Vault lease with sync", async () => {
    const { credential, accessToken } = await credentialFor(readonlySecret, 600);
    const upstreamLeaseId = (await readLease(broker, credential.lease_id)).upstream_lease_id;

    const revoked = await broker.request("POST", `/v1/leases/${credential.lease_id}/revoke`, { token: accessToken, body: { reason: "done" } });

    expect(revoked.status, revoked.text).toBe(200);
    expect(vault.standin.leases.revoked).toContain(upstreamLeaseId);
    expect(vault.standin.database.liveUsers.has(credential.data.username)).toBe(false);
    expect(vault.standin.callsTo("sys/leases/revoke").at(-1)!.body).toEqual({ lease_id: upstreamLeaseId, sync: true });
    expect((await readLease(broker, credential.lease_id)).status).toBe("revoked");
  });

  it("bulk revoke ends every Vault lease", async () => {
    const secret = await createVaultSecret("readonly");
    const first = await credentialFor(secret.name, 600);
    const second = await credentialFor(secret.name, 600);

    const revoked = await broker.request("POST", "/v1/leases/revoke", { token: broker.tokens.operator, body: { secret_id: secret.id, reason: "role retired" } });

    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.json.revoked).toBe(2);
    for (const { credential } of [first, second]) {
      expect(vault.standin.database.liveUsers.has(credential.data.username)).toBe(false);
      expect((await readLease(broker, credential.lease_id)).status).toBe("revoked");
    }
  });

  describe("deleting a secret revokes its Vault leases", () => {
    let roles = 0;

    /** Creates a secret on a Vault role of its own, read with the sudo token that revoke-prefix needs, and two workloads' credentials. */
    async function secretWithLeases(dedicated: boolean): Promise<{ secret: any; role: string; credentials: any[] }> {
      roles += 1;
      const role = `reports-${roles}`;
      vault.standin.database.addRole(role, { defaultTtl: 3600, maxTtl: 7200 });
      const secret = await createSecret(broker, {
        name: `db/${uniqueName(role)}`,
        adapter: "vault",
        kind: "dynamic",
        generate: undefined,
        settings: vault.settings({ database: { role, dedicated_role: dedicated } }, "token"),
      });
      const credentials = [(await credentialFor(secret.name, 600)).credential, (await credentialFor(secret.name, 600)).credential];
      return { secret, role, credentials };
    }

    function deleteSecret(secretId: string) {
      return broker.request("DELETE", `/v1/secrets/${secretId}`, { token: broker.tokens.operator, body: { reason: "role retired" } });
    }

    function perLeaseRevokes(role: string): number {
      return vault.standin.callsTo("sys/leases/revoke").filter((call) => String(call.body["lease_id"]).startsWith(`database/creds/${role}/`)).length;
    }

    /** Registers another dynamic secret on `role`, claiming it alone when `dedicated`. */
    function secretOnRole(role: string, dedicated: boolean) {
      const body = { name: `db/${uniqueName(role)}`, adapter: "vault", kind: "dynamic", owner: "team-reports", settings: vault.settings({ database: { role, dedicated_role: dedicated } }, "token") };
      return broker.request("POST", "/v1/secrets", { token: broker.tokens.operator, body });
    }

    it.each([
      ["a second secret on a dedicated role", true, false],
      ["a dedicated secret on a shared role", false, true],
    ])("refuses %s with 409", async (_case, firstDedicated, secondDedicated) => {
      const { role } = await secretWithLeases(firstDedicated);
      const before = await rowCount(broker, "secrets");

      const response = await secretOnRole(role, secondDedicated);

      expectProblem(response, 409, "conflict");
      expect(response.json.detail).toContain("dedicated_role");
      expect(await rowCount(broker, "secrets")).toBe(before);
    });

    it("allows two secrets on a shared role", async () => {
      const { role } = await secretWithLeases(false);

      const response = await secretOnRole(role, false);

      expect(response.status, response.text).toBe(201);
    });

    it("refuses a patch claiming a shared role", async () => {
      const { role } = await secretWithLeases(false);
      const other = (await secretOnRole(role, false)).json;
      const settings = { ...other.settings, database: { ...other.settings.database, dedicated_role: true } };

      const response = await broker.request("PATCH", `/v1/secrets/${other.id}`, { token: broker.tokens.operator, body: { settings } });

      expectProblem(response, 409, "conflict");
    });

    it("refuses a patch moving leases to another role", async () => {
      const { secret } = await secretWithLeases(true);
      const settings = { ...secret.settings, database: { ...secret.settings.database, role: "readonly" } };

      const response = await broker.request("PATCH", `/v1/secrets/${secret.id}`, { token: broker.tokens.operator, body: { settings } });

      expectProblem(response, 400, "validation_failed");
      expect(invalidParamNames(response)).toEqual(["settings"]);
      expect(response.json.detail).toContain("renewed and revoked there");
    });

    it("dedicated role: one revoke-prefix ends every lease", async () => {
      const { secret, role, credentials } = await secretWithLeases(true);

      const deleted = await deleteSecret(secret.id);

      expect(deleted.status, deleted.text).toBe(200);
      expect(vault.standin.callsTo("sys/leases/revoke-prefix/").map((call) => call.path)).toContain(`sys/leases/revoke-prefix/database/creds/${role}/`);
      expect(vault.standin.callsTo(`sys/leases/revoke-prefix/database/creds/${role}/`)).toHaveLength(1);
      expect(perLeaseRevokes(role)).toBe(0);
      for (const credential of credentials) {
        expect(vault.standin.database.liveUsers.has(credential.data.username)).toBe(false);
        const lease = await readLease(broker, credential.lease_id);
        expect(lease.status).toBe("revoked");
        expect(lease.upstream_revoke).toMatchObject({ state: "done", attempts: 1, last_error: null });
      }
      const events = (await auditEvents(broker)).filter((event: any) => event.action === "lease.upstream_revoke" && event.details.secret_id === secret.id);
      expect(events).toHaveLength(2);
      expect(events.every((event: any) => event.details.revoked_with_prefix === `database/creds/${role}/`)).toBe(true);
    });

    it("shared role: each lease revoked, other clients' kept", async () => {
      const { secret, role, credentials } = await secretWithLeases(false);
      const other = await fetch(`${vault.standin.address}/v1/database/creds/${role}`, { headers: { "x-vault-token": vault.rootToken } }).then((response) => response.json() as Promise<{ lease_id: string }>);

      const deleted = await deleteSecret(secret.id);

      expect(deleted.status, deleted.text).toBe(200);
      expect(vault.standin.callsTo(`sys/leases/revoke-prefix/database/creds/${role}/`)).toHaveLength(0);
      expect(perLeaseRevokes(role)).toBe(2);
      for (const credential of credentials) {
        expect(vault.standin.database.liveUsers.has(credential.data.username)).toBe(false);
        expect((await readLease(broker, credential.lease_id)).upstream_revoke.state).toBe("done");
      }
      expect(vault.standin.leases.get(other.lease_id)).toBeDefined();
    });

    it("failed revoke-prefix leaves revoke_failed, retried", async () => {
      const { secret, role, credentials } = await secretWithLeases(true);
      vault.standin.leases.failRevocation = true;
      try {
        const deleted = await deleteSecret(secret.id);

        expect(deleted.status, deleted.text).toBe(200);
        expect(vault.standin.callsTo(`sys/leases/revoke-prefix/database/creds/${role}/`)).toHaveLength(1);
        expect(perLeaseRevokes(role)).toBe(0);
        for (const credential of credentials) {
          const lease = await readLease(broker, credential.lease_id);
          expect(lease.status).toBe("revoke_failed");
          expect(lease.upstream_revoke).toMatchObject({ state: "failed", attempts: 1 });
          expect(lease.upstream_revoke.last_error).toMatch(/Vault failed to revoke the leases under database\/creds\/reports-\d+\/ .*\(500/);
          expect(vault.standin.database.liveUsers.has(credential.data.username)).toBe(true);
        }
      } finally {
        vault.standin.leases.failRevocation = false;
      }

      broker.clock.advance(60 * MINUTE_MS);
      await retryUpstreamRevocations(broker.deps);

      expect(perLeaseRevokes(role)).toBe(2);
      for (const credential of credentials) {
        expect((await readLease(broker, credential.lease_id)).status).toBe("revoked");
        expect(vault.standin.database.liveUsers.has(credential.data.username)).toBe(false);
      }
    });
  });

  it("lease Vault no longer has counts as revoked", async () => {
    const { credential, accessToken } = await credentialFor(readonlySecret, 600);
    const upstreamLeaseId = (await readLease(broker, credential.lease_id)).upstream_lease_id;
    await fetch(`${vault.standin.address}/v1/sys/leases/revoke`, {
      method: "PUT",
      headers: { "x-vault-token": vault.rootToken },
      body: JSON.stringify({ lease_id: upstreamLeaseId, sync: true }),
    });

    const revoked = await broker.request("POST", `/v1/leases/${credential.lease_id}/revoke`, { token: accessToken });

    expect(revoked.status, revoked.text).toBe(200);
    expect((await readLease(broker, credential.lease_id)).status).toBe("revoked");
  });

  it("sealed Vault fails issuance with 503, no lease", async () => {
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: readonlySecret });
    const leasesBefore = await rowCount(broker, "leases");
    vault.standin.sealed = true;
    try {
      const response = await requestCredential(broker, accessToken, { secret: readonlySecret, ttl: 600 });

      expectProblem(response, 503, "upstream_unavailable");
      expect(response.json.detail).toMatch(/Vault is sealed or unavailable/);
      expect(response.headers.get("retry-after")).not.toBeNull();
      expect(await rowCount(broker, "leases")).toBe(leasesBefore);
    } finally {
      vault.standin.sealed = false;
    }
  });

  it("failed revocation stays revoke_failed until retried", async () => {
    const { credential, accessToken } = await credentialFor(readonlySecret, 600);
    vault.standin.leases.failRevocation = true;
    try {
      await broker.request("POST", `/v1/leases/${credential.lease_id}/revoke`, { token: accessToken });
      const failed = await readLease(broker, credential.lease_id);
      expect(failed.status).toBe("revoke_failed");
      expect(vault.standin.database.liveUsers.has(credential.data.username)).toBe(true);
    } finally {
      vault.standin.leases.failRevocation = false;
    }

    broker.clock.advance(60 * MINUTE_MS);
    await retryUpstreamRevocations(broker.deps);

    expect((await readLease(broker, credential.lease_id)).status).toBe("revoked");
    expect(vault.standin.database.liveUsers.has(credential.data.username)).toBe(false);
  });

  it("rejects invalid settings without a write", async () => {
    const secretsBefore = await rowCount(broker, "secrets");

    const response = await broker.request("POST", "/v1/secrets", {
      token: broker.tokens.operator,
      body: {
        name: `db/${uniqueName("bad-vault")}`,
        adapter: "vault",
        kind: "dynamic",
        owner: "team-payments",
        settings: { connection: { address: "http://vault.example.com" }, auth: { method: "token", token: "hvs.literal" }, database: {} },
      },
    });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response).sort()).toEqual(["settings.auth.token", "settings.auth.token_secret", "settings.connection.address", "settings.database.role"]);
    expect(response.text).not.toContain("hvs.literal");
    expect(await rowCount(broker, "secrets")).toBe(secretsBefore);
  });

  describe("creation checks the settings against Vault", () => {
    const cases: { label: string; settings: () => Record<string, unknown>; status: number; code: string; field?: string; detail: RegExp }[] = [
      {
        label: "unknown secret_id secret",
        settings: () => ({ ...vault.settings({ database: { role: "readonly" } }), auth: { method: "approle", role_id: vault.appRole.roleId, secret_id_secret: "vault/no-such-secret" } }),
        status: 400,
        code: "validation_failed",
        field: "settings.auth.secret_id_secret",
        detail: /names local secret 'vault\/no-such-secret', which does not exist/,
      },
      {
        label: "secret_id field missing",
        settings: () => ({
          ...vault.settings({ database: { role: "readonly" } }),
          auth: { method: "approle", role_id: vault.appRole.roleId, secret_id_secret: SECRET_ID_SECRET, secret_id_field: "other" },
        }),
        status: 400,
        code: "validation_failed",
        field: "settings.auth.secret_id_field",
        detail: /has no field other/,
      },
      {
        label: "unknown database role",
        settings: () => vault.settings({ database: { role: "no-such-role" } }),
        status: 400,
        code: "validation_failed",
        field: "settings.database.role",
        detail: /has no role no-such-role under database\/roles\//,
      },
      {
        label: "wrong database mount",
        settings: () => vault.settings({ database: { mount: "dbs", role: "readonly" } }),
        status: 400,
        code: "validation_failed",
        field: "settings.database.mount",
        detail: /no database secrets engine serves dbs\//,
      },
      {
        label: "unreachable Vault",
        settings: () => ({ ...vault.settings({ database: { role: "readonly" } }), connection: { address: "http://127.0.0.1:1", timeout_seconds: 5 } }),
        status: 503,
        code: "upstream_unavailable",
        detail: /Vault is unreachable .* check that it is running and that connection.address is right/,
      },
    ];

    for (const { label, settings, status, code, field, detail } of cases) {
      it(`refuses ${label}, creates nothing`, async () => {
        const secretsBefore = await rowCount(broker, "secrets");
        const leasesIssued = vault.standin.callsTo("database/creds/").length;

        const response = await broker.request("POST", "/v1/secrets", {
          token: broker.tokens.operator,
          body: { name: `db/${uniqueName("checked")}`, adapter: "vault", kind: "dynamic", owner: "team-orders", settings: settings() },
        });

        expectProblem(response, status, code);
        if (field) {
          expect(invalidParamNames(response)).toEqual([field]);
        }
        expect(response.json.detail).toMatch(detail);
        expect(await rowCount(broker, "secrets")).toBe(secretsBefore);
        expect(vault.standin.callsTo("database/creds/")).toHaveLength(leasesIssued);
      });
    }

    it("reads the role without creating a credential", async () => {
      const reads = vault.standin.callsTo("database/roles/readonly").length;
      const leasesIssued = vault.standin.callsTo("database/creds/").length;

      await createVaultSecret("readonly");

      expect(vault.standin.callsTo("database/roles/readonly")).toHaveLength(reads + 1);
      expect(vault.standin.callsTo("database/creds/")).toHaveLength(leasesIssued);
    });

    it("refuses a settings update naming an unknown local secret", async () => {
      const secret = await createVaultSecret("readonly");
      const settings = { ...secret.settings, auth: { ...secret.settings.auth, secret_id_secret: "vault/renamed" } };

      const response = await broker.request("PATCH", `/v1/secrets/${secret.id}`, { token: broker.tokens.operator, body: { settings } });

      expectProblem(response, 400, "validation_failed");
      expect(invalidParamNames(response)).toEqual(["settings.auth.secret_id_secret"]);
      const unchanged = await broker.request("GET", `/v1/secrets/${secret.id}`, { token: broker.tokens.auditor });
      expect(unchanged.json.settings.auth.secret_id_secret).toBe(SECRET_ID_SECRET);
    });
  });

  it("keeps tokens and values out of logs and audit", async () => {
    const text = broker.logs.join("\n") + JSON.stringify(await auditEvents(broker));

    expect(issuedPasswords.length).toBeGreaterThan(3);
    for (const value of [...issuedPasswords, vault.appRole.secretId, vault.rootToken, ...vault.standin.tokens.liveTokens().map((token) => token.id)]) {
      expect(text).not.toContain(value);
    }
    expect(text).toContain("logged in to Vault with AppRole");
  });
});
