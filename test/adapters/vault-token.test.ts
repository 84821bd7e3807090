import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UpstreamRejected } from "../../adapters/errors.js";
import type { VaultAdapter } from "../../adapters/vault/vault-adapter.js";
import { startVaultFixture, SECRET_ID_SECRET, type VaultFixture } from "../support/vault-standin/vault-fixture.js";

const MINUTE_MS = 60_000;

describe("vault adapter broker token", () => {
  let fixture: VaultFixture;
  let adapter: VaultAdapter;

  beforeEach(async () => {
    fixture = await startVaultFixture();
    adapter = fixture.adapter();
    fixture.standin.kv.put("prod/api", { key: "one" });
  });

  afterEach(async () => {
    await fixture?.stop();
  });

  function read(auth: "approle" | "token" = "approle") {
    const settings = adapter.parseSettings("static", fixture.settings({ kv: { mount: "secret", path: "prod/api" } }, auth));
    return adapter.issue(fixture.call("static", settings), { leaseId: "lease_x", expiresAt: fixture.clock.now(), current: null });
  }

  it("logs in once and reuses the token", async () => {
    await read();
    await read();

    expect(fixture.standin.callsTo("auth/approle/login")).toHaveLength(1);
    expect(fixture.tokenEvents).toEqual(["login"]);
  });

  it("renews after half the TTL passed", async () => {
    await read();
    fixture.clock.advance(31 * MINUTE_MS);

    await read();

    expect(fixture.standin.callsTo("auth/token/renew-self")).toHaveLength(1);
    expect(fixture.tokenEvents).toEqual(["login", "renew"]);
    expect(fixture.standin.callsTo("auth/approle/login")).toHaveLength(1);
  });

  it("logs in again when renewal is refused", async () => {
    await read();
    fixture.standin.tokens.refuseRenewal = true;
    fixture.clock.advance(31 * MINUTE_MS);

    await read();

    expect(fixture.tokenEvents).toEqual(["login", "renew_refused", "login"]);
    expect(fixture.standin.callsTo("auth/approle/login")).toHaveLength(2);
  });

  it("logs in again past the token's max TTL", async () => {
    await read();
    for (let step = 0; step < 8; step += 1) {
      fixture.clock.advance(31 * MINUTE_MS);
      await read();
    }

    expect(fixture.tokenEvents).toContain("renew_refused");
    expect(fixture.tokenEvents.filter((event) => event === "login").length).toBeGreaterThan(1);
  });

  it("logs in again after Vault expired the token", async () => {
    await read();
    for (const token of fixture.standin.tokens.liveTokens()) {
      if (token.id !== fixture.rootToken) fixture.standin.tokens.expire(token.id);
    }

    await expect(read()).resolves.toMatchObject({ data: { key: "one" } });
    expect(fixture.standin.callsTo("auth/approle/login")).toHaveLength(2);
  });

  it("rejects a wrong secret_id without echoing it", async () => {
    fixture.localSecrets.set(SECRET_ID_SECRET, { secret_id: "wrong-secret-id-value" });

    const failure = read();

    await expect(failure).rejects.toBeInstanceOf(UpstreamRejected);
    await expect(failure).rejects.toThrow(/log in with AppRole at auth\/approle .* \(400\); check auth.role_id and the secret_id in local secret vault\/broker-approle/);
    await expect(failure).rejects.not.toThrow(/wrong-secret-id-value/);
    await expect(failure).rejects.not.toThrow(fixture.appRole.roleId);
    expect(fixture.tokenEvents).toEqual(["login_failed"]);
  });

  it("expired static token names its local secret", async () => {
    fixture.standin.tokens.expire(fixture.rootToken);

    const failure = read("token");

    await expect(failure).rejects.toThrow(/\(403\); check that local secret vault\/broker-token contains a valid, unexpired Vault token/);
    await expect(failure).rejects.not.toThrow(fixture.rootToken);
  });

  it("static token past renewal is rejected", async () => {
    const token = fixture.standin.tokens.addToken({ ttl: 600, maxTtl: 600, renewable: true, policies: ["broker"] });
    fixture.localSecrets.set("vault/broker-token", { token: token.id });
    await read("token");
    fixture.clock.advance(9 * MINUTE_MS);
    // Vault caps this renewal at the token's max TTL, one minute away.
    await read("token");
    fixture.clock.advance(2 * MINUTE_MS);

    const failure = read("token");

    await expect(failure).rejects.toThrow(/cannot be renewed; store a new token in local secret vault\/broker-token/);
    expect(fixture.tokenEvents).toEqual(["lookup", "renew", "renew_refused", "expired"]);
  });

  it("logs accessors, never tokens", async () => {
    await read();
    fixture.clock.advance(31 * MINUTE_MS);
    await read();

    const text = fixture.logs.join("\n");
    expect(text).toContain("logged in to Vault with AppRole");
    expect(text).toContain("renewed the broker's Vault token");
    for (const token of fixture.standin.tokens.liveTokens()) {
      expect(text).not.toContain(token.id);
    }
    expect(text).not.toContain(fixture.appRole.secretId);
  });
});
