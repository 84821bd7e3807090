import nodeVault from "node-vault";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UpstreamNotFound, UpstreamRejected } from "../../adapters/errors.js";
import type { VaultAdapter } from "../../adapters/vault/vault-adapter.js";
import { startVaultFixture, type VaultFixture } from "../support/vault-standin/vault-fixture.js";

describe("vault adapter leases", () => {
  let fixture: VaultFixture;
  let adapter: VaultAdapter;

  beforeAll(async () => {
    fixture = await startVaultFixture();
    adapter = fixture.adapter();
  });

  afterAll(async () => {
    await fixture?.stop();
  });

  function dynamicCall(auth: "approle" | "token" = "approle", database: Record<string, unknown> = {}) {
    return fixture.call("dynamic", adapter.parseSettings("dynamic", fixture.settings({ database: { role: "readonly", ...database } }, auth)));
  }

  async function issue(call = dynamicCall()) {
    return adapter.issue(call, { leaseId: "lease_x", expiresAt: new Date(fixture.clock.now().getTime() + 3600_000), current: null });
  }

  it("issue keeps Vault's expiry when shorter", async () => {
    const issued = await issue();

    expect(issued.upstreamLeaseId).toMatch(/^database\/creds\/readonly\//);
    expect(issued.expiresAt).toEqual(fixture.standin.leases.get(issued.upstreamLeaseId!)!.expiresAt);
    expect(fixture.standin.callsTo("sys/leases/renew")).toHaveLength(0);
  });

  it("renew returns the expiry Vault granted", async () => {
    const issued = await issue();
    const requested = new Date(fixture.clock.now().getTime() + 3 * 3600_000);

    const renewed = await adapter.renew(dynamicCall(), { upstreamLeaseId: issued.upstreamLeaseId! }, requested);

    // The role's max TTL is two hours from issue.
    expect(renewed).toEqual({ expiresAt: new Date(fixture.clock.now().getTime() + 2 * 3600_000) });
  });

  it("renew of an unknown lease is UpstreamNotFound", async () => {
    const failure = adapter.renew(dynamicCall(), { upstreamLeaseId: "database/creds/readonly/unknown" }, fixture.clock.now());

    await expect(failure).rejects.toBeInstanceOf(UpstreamNotFound);
  });

  it("rejects a lease of another role", async () => {
    const other = { upstreamLeaseId: "database/creds/admin/abc" };

    await expect(adapter.revoke(dynamicCall(), other)).rejects.toBeInstanceOf(UpstreamRejected);
    await expect(adapter.renew(dynamicCall(), other, fixture.clock.now())).rejects.toThrow(/does not start with database\/creds\/readonly\//);
    expect(fixture.standin.callsTo("sys/leases/revoke")).toHaveLength(0);
  });

  it("revoke accepts an unknown lease", async () => {
    await expect(adapter.revoke(dynamicCall(), { upstreamLeaseId: "database/creds/readonly/gone" })).resolves.toBeUndefined();
  });

  it("node-vault revoke() reports Vault's 202 as an error", async () => {
    const issued = await issue();
    const client = nodeVault({ endpoint: fixture.standin.address, token: fixture.rootToken });

    const failure = client.revoke({ lease_id: issued.upstreamLeaseId! });

    await expect(failure).rejects.toMatchObject({ response: { statusCode: 202 } });
    expect(fixture.standin.callsTo("sys/leases/revoke").at(-1)!.body).toEqual({ lease_id: issued.upstreamLeaseId });
  });

  it("revokeAll of a dedicated role uses sys/leases/revoke-prefix", async () => {
    const first = await issue();
    const second = await issue();

    const revoked = await adapter.revokeAll(dynamicCall("token", { dedicated_role: true }));

    expect(revoked).toEqual({ upstreamLeaseIdPrefix: "database/creds/readonly/" });
    expect(fixture.standin.leases.get(first.upstreamLeaseId!)).toBeUndefined();
    expect(fixture.standin.leases.get(second.upstreamLeaseId!)).toBeUndefined();
    const calls = fixture.standin.callsTo("sys/leases/revoke-prefix/");
    expect(calls.map((call) => call.path)).toEqual(["sys/leases/revoke-prefix/database/creds/readonly/"]);
    expect(calls[0]!.body).toEqual({ sync: true });
    expect(fixture.standin.callsTo("sys/revoke-prefix/")).toHaveLength(0);
  });

  it("revokeAll of a shared role sends nothing", async () => {
    const issued = await issue();
    const prefixCalls = fixture.standin.callsTo("sys/leases/revoke-prefix/").length;

    await expect(adapter.revokeAll(dynamicCall("token"))).resolves.toBeNull();

    expect(fixture.standin.callsTo("sys/leases/revoke-prefix/")).toHaveLength(prefixCalls);
    expect(fixture.standin.leases.get(issued.upstreamLeaseId!)).toBeDefined();
  });

  it("revokeAll without sudo is denied", async () => {
    await expect(adapter.revokeAll(dynamicCall("approle", { dedicated_role: true }))).rejects.toThrow(
      /Vault denied permission to revoke the leases under database\/creds\/readonly\//,
    );
  });

  it("node-vault revokePrefix() calls the removed legacy path", async () => {
    const client = nodeVault({ endpoint: fixture.standin.address, token: fixture.rootToken });

    await expect(client.revokePrefix({ path_prefix: "database/creds/readonly" })).rejects.toMatchObject({ response: { statusCode: 404 } });
    expect(fixture.standin.callsTo("sys/revoke-prefix/")).toHaveLength(1);
  });
});
