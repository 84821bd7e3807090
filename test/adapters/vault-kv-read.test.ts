import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UpstreamTimeout, UpstreamUnavailable } from "../../adapters/errors.js";
import { VaultAdapter } from "../../adapters/vault/vault-adapter.js";
import { VaultPathUnsupported, VaultPermissionDenied, VaultSealed, VaultSecretMissing, VaultVersionDeleted } from "../../adapters/vault/vault-errors.js";
import { startVaultFixture, testSealer, type VaultFixture } from "../support/vault-standin/vault-fixture.js";

describe("vault adapter KV v2 reads", () => {
  let fixture: VaultFixture;
  let adapter: VaultAdapter;

  beforeAll(async () => {
    fixture = await startVaultFixture({ namespaces: ["team-a"] });
    adapter = fixture.adapter();
  });

  afterAll(async () => {
    await fixture?.stop();
  });

  function kvCall(path: string, mount = "secret", extra: Record<string, unknown> = {}) {
    return fixture.call("static", adapter.parseSettings("static", fixture.settings({ kv: { mount, path }, ...extra })));
  }

  function issue(path: string, version?: string, mount?: string) {
    return adapter.issue(kvCall(path, mount), { leaseId: "lease_x", expiresAt: fixture.clock.now(), current: version ? { version, sealedValue: null } : null });
  }

  it("reads the latest version with its number", async () => {
    fixture.standin.kv.put("prod/api", { key: "one" });
    fixture.standin.kv.put("prod/api", { key: "two" });

    const issued = await issue("prod/api");

    expect(issued.data).toEqual({ key: "two" });
    expect(issued.version).toBe("2");
    expect(issued.upstreamLeaseId).toBeNull();
  });

  it("reads the broker's current version", async () => {
    fixture.standin.kv.put("prod/pinned", { key: "one" });
    fixture.standin.kv.put("prod/pinned", { key: "two" });

    const issued = await issue("prod/pinned", "1");

    expect(issued.data).toEqual({ key: "one" });
    expect(issued.version).toBe("1");
  });

  it("missing key is VaultSecretMissing", async () => {
    const failure = issue("prod/nothing-here");

    await expect(failure).rejects.toBeInstanceOf(VaultSecretMissing);
    await expect(failure).rejects.toMatchObject({ code: "upstream_not_found", retryable: false });
    await expect(failure).rejects.toThrow(/has no secret at .*secret\/data\/prod\/nothing-here/);
  });

  it("deleted version is VaultVersionDeleted", async () => {
    fixture.standin.kv.put("prod/deleted", { key: "one" });
    const deleteCall = await fetch(`${fixture.standin.address}/v1/secret/delete/prod/deleted`, {
      method: "POST",
      headers: { "x-vault-token": fixture.rootToken, "content-type": "application/json" },
      body: JSON.stringify({ versions: [1] }),
    });
    expect(deleteCall.status).toBe(204);

    const failure = issue("prod/deleted");

    await expect(failure).rejects.toBeInstanceOf(VaultVersionDeleted);
    await expect(failure).rejects.toThrow(/version 1 was deleted/);
  });

  it("destroyed version is VaultVersionDeleted", async () => {
    fixture.standin.kv.put("prod/destroyed", { key: "one" });
    fixture.standin.kv.put("prod/destroyed", { key: "two" });
    await fetch(`${fixture.standin.address}/v1/secret/destroy/prod/destroyed`, {
      method: "PUT",
      headers: { "x-vault-token": fixture.rootToken },
      body: JSON.stringify({ versions: [1] }),
    });

    await expect(issue("prod/destroyed", "1")).rejects.toThrow(/version 1 was destroyed/);
    await expect(issue("prod/destroyed")).resolves.toMatchObject({ version: "2" });
  });

  it("wrong mount is VaultPathUnsupported", async () => {
    const failure = issue("prod/api", undefined, "kv-nowhere");

    await expect(failure).rejects.toBeInstanceOf(VaultPathUnsupported);
    await expect(failure).rejects.toMatchObject({ code: "upstream_rejected", retryable: false });
    await expect(failure).rejects.toThrow(/no Vault engine serves the path/);
  });

  it("permission denied is VaultPermissionDenied", async () => {
    fixture.standin.kv.put("prod/denied", { key: "one" });
    fixture.standin.deny("secret/data/prod/denied");
    try {
      const failure = issue("prod/denied");
      await expect(failure).rejects.toBeInstanceOf(VaultPermissionDenied);
      await expect(failure).rejects.toMatchObject({ retryable: false });
    } finally {
      fixture.standin.allow("secret/data/prod/denied");
    }
  });

  it("sealed Vault is VaultSealed, retryable", async () => {
    fixture.standin.kv.put("prod/sealed", { key: "one" });
    fixture.standin.sealed = true;
    try {
      const failure = issue("prod/sealed");
      await expect(failure).rejects.toBeInstanceOf(VaultSealed);
      await expect(failure).rejects.toMatchObject({ code: "upstream_unavailable", retryable: true });
    } finally {
      fixture.standin.sealed = false;
    }
  });

  it("unreachable Vault is UpstreamUnavailable", async () => {
    const settings = adapter.parseSettings("static", { ...fixture.settings({ kv: { mount: "secret", path: "a" } }), connection: { address: "http://127.0.0.1:1" } });
    const failure = adapter.issue(fixture.call("static", settings), { leaseId: "lease_x", expiresAt: fixture.clock.now(), current: null });

    await expect(failure).rejects.toBeInstanceOf(UpstreamUnavailable);
    await expect(failure).rejects.toThrow(/ECONNREFUSED/);
  });

  it("slow Vault times out at the call's signal", async () => {
    fixture.standin.kv.put("prod/slow", { key: "one" });
    await issue("prod/slow");
    fixture.standin.delayMs = 500;
    try {
      const call = { ...kvCall("prod/slow"), signal: AbortSignal.timeout(50) };
      await expect(adapter.issue(call, { leaseId: "lease_x", expiresAt: fixture.clock.now(), current: null })).rejects.toBeInstanceOf(UpstreamTimeout);
    } finally {
      fixture.standin.delayMs = 0;
    }
  });

  it("namespace goes in X-Vault-Namespace", async () => {
    const namespaced = new VaultAdapter({ sealer: testSealer, now: () => fixture.clock.now() });
    try {
      const roleInNamespace = fixture.standin.tokens.addAppRole({});
      fixture.localSecrets.set("vault/team-a-approle", { secret_id: roleInNamespace.secretId });
      fixture.standin.kv.put("shared/config", { key: "value" });
      const settings = namespaced.parseSettings("static", {
        connection: { address: fixture.standin.address, namespace: "team-a/" },
        auth: { method: "approle", role_id: roleInNamespace.roleId, secret_id_secret: "vault/team-a-approle" },
        kv: { mount: "secret", path: "shared/config" },
      });

      await namespaced.issue(fixture.call("static", settings), { leaseId: "lease_x", expiresAt: fixture.clock.now(), current: null });

      const calls = fixture.standin.callsTo("secret/data/shared/config");
      expect(calls.at(-1)!.namespace).toBe("team-a");
      expect(fixture.standin.callsTo(`auth/approle/login`).at(-1)!.namespace).toBe("team-a");
    } finally {
      await namespaced.close();
    }
  });

  it("token auth reads with the stored token", async () => {
    fixture.standin.kv.put("prod/token-auth", { key: "one" });
    const settings = adapter.parseSettings("static", fixture.settings({ kv: { mount: "secret", path: "prod/token-auth" } }, "token"));

    const issued = await adapter.issue(fixture.call("static", settings), { leaseId: "lease_x", expiresAt: fixture.clock.now(), current: null });

    expect(issued.data).toEqual({ key: "one" });
    expect(fixture.tokenEvents).toContain("lookup");
  });
});
