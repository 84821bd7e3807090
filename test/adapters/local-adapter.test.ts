import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VersionRef } from "../../adapters/contract.js";
import { AdapterError, InvalidAdapterSettings, UpstreamNotFound, UpstreamRejected, UpstreamUnavailable } from "../../adapters/errors.js";
import { CHARACTER_CLASSES } from "../../adapters/local/generate-value.js";
import { LocalAdapter } from "../../adapters/local/local-adapter.js";
import type { ValueSealer } from "../../adapters/local/value-sealer.js";
import { adapterCall, environmentRing, localSecret, randomKeys, replicaOf, sealedVersion } from "../support/master-key-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

const VALUE = { username: "orders", password: "correct horse battery staple" };

/** Flips the lowest bit of the middle byte of a base64url part. */
function flipByte(part: string): string {
  const bytes = Buffer.from(part, "base64url");
  const index = Math.floor(bytes.length / 2);
  bytes[index] = bytes[index]! ^ 0x01;
  return bytes.toString("base64url");
}

function replacePart(envelope: string, index: number, change: (part: string) => string): string {
  const parts = envelope.split(".");
  parts[index] = change(parts[index]!);
  return parts.join(".");
}

/** Runs `work` and returns the adapter error it raised; fails the test when it raised none. */
async function adapterErrorOf(work: () => Promise<unknown>): Promise<AdapterError> {
  try {
    await work();
  } catch (error) {
    expect(error).toBeInstanceOf(AdapterError);
    return error as AdapterError;
  }
  throw new Error("expected an AdapterError, but the call succeeded");
}

describe("local adapter", () => {
  let broker: TestBroker;
  let adapter: LocalAdapter;

  beforeAll(async () => {
    broker = await startTestBroker();
    adapter = new LocalAdapter({ sealer: broker.deps.dataKeys });
  });

  afterAll(async () => {
    await broker.close();
  });

  it("declares its name and kinds", () => {
    expect(adapter.name).toBe("local");
    expect(adapter.kinds).toEqual(["static"]);
  });

  it("round-trips a given value", async () => {
    const secret = localSecret("sec_roundtrip");

    const pending = await adapter.createPending(adapterCall(secret), { rotationId: null, current: null, value: VALUE });
    const issued = await adapter.issue(adapterCall(secret), {
      leaseId: "lease_test",
      expiresAt: new Date(Date.parse("2030-01-01T00:00:00Z")),
      current: { version: pending.version, sealedValue: pending.sealedValue },
    });

    expect(pending.version).toBe("1");
    expect(pending.data).toEqual(VALUE);
    expect(issued).toEqual({ data: VALUE, version: "1", upstreamLeaseId: null });
  });

  it("counts versions from current", async () => {
    const secret = localSecret("sec_versions");
    const first = await sealedVersion(adapter, secret.id, VALUE);

    const second = await adapter.createPending(adapterCall(secret), { rotationId: "rot_1", current: first, value: { password: "next" } });
    const third = await adapter.createPending(adapterCall(secret), { rotationId: "rot_2", current: { version: "9", sealedValue: null }, value: { password: "x" } });

    expect(second.version).toBe("2");
    expect(third.version).toBe("10");
    expect((await adapter.issue(adapterCall(secret), { leaseId: "lease_a", expiresAt: new Date(), current: second })).data).toEqual({ password: "next" });
  });

  it.each(["0", "01", "abc", "", "1.5", "-1"])("rejects current version %j", async (version) => {
    const error = await adapterErrorOf(() =>
      adapter.createPending(adapterCall(localSecret("sec_badversion")), { rotationId: null, current: { version, sealedValue: null }, value: VALUE }),
    );

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain("sec_badversion");
  });

  it("ciphertext differs per write", async () => {
    const first = await sealedVersion(adapter, "sec_same", VALUE);
    const second = await sealedVersion(adapter, "sec_same", VALUE);

    expect(first.sealedValue).not.toBe(second.sealedValue);
    expect(first.sealedValue).toMatch(/^v2\.dk_[0-9a-f]{24}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
    for (const field of Object.values(VALUE)) {
      expect(first.sealedValue).not.toContain(field);
      expect(first.sealedValue).not.toContain(Buffer.from(field).toString("base64url"));
    }
  });

  it.each([
    { part: "version", index: 0, change: () => "v3" },
    { part: "data key id", index: 1, change: (id: string) => `${id.slice(0, -1)}${id.endsWith("0") ? "1" : "0"}` },
    { part: "nonce", index: 2, change: flipByte },
    { part: "tag", index: 3, change: flipByte },
    { part: "ciphertext", index: 4, change: flipByte },
  ])("rejects a changed $part", async ({ index, change }) => {
    const stored = await sealedVersion(adapter, "sec_tamper", VALUE);
    const tampered = replacePart(stored.sealedValue!, index, change);
    expect(tampered).not.toBe(stored.sealedValue);

    const error = await adapterErrorOf(() =>
      adapter.issue(adapterCall(localSecret("sec_tamper")), { leaseId: "lease_t", expiresAt: new Date(), current: { version: "1", sealedValue: tampered } }),
    );

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      "stored value of secret sec_tamper version 1 failed its integrity check; it was altered or copied from another secret or version, so rotate the secret with a new value",
    );
    expect(error.message).not.toContain(tampered.split(".")[4]!.slice(0, 12));
  });

  it.each([
    { case: "truncated ciphertext", change: (sealed: string) => sealed.slice(0, -4) },
    { case: "extra part", change: (sealed: string) => `${sealed}.AAAA` },
    { case: "non-canonical base64url", change: (sealed: string) => replacePart(sealed, 2, (part) => `${part.slice(0, -1)}*`) },
    { case: "empty string", change: () => "" },
  ])("rejects $case", async ({ change }) => {
    const stored = await sealedVersion(adapter, "sec_malformed", VALUE);

    const error = await adapterErrorOf(() =>
      adapter.issue(adapterCall(localSecret("sec_malformed")), { leaseId: "lease_m", expiresAt: new Date(), current: { version: "1", sealedValue: change(stored.sealedValue!) } }),
    );

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.retryable).toBe(false);
  });

  it("rejects a value moved to another secret", async () => {
    const stored = await sealedVersion(adapter, "sec_origin", VALUE);

    const error = await adapterErrorOf(() =>
      adapter.issue(adapterCall(localSecret("sec_elsewhere")), { leaseId: "lease_x", expiresAt: new Date(), current: stored }),
    );

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain("secret sec_elsewhere version 1 failed its integrity check");
  });

  it("rejects a value moved to another version", async () => {
    const stored = await sealedVersion(adapter, "sec_moved", VALUE);

    const error = await adapterErrorOf(() =>
      adapter.issue(adapterCall(localSecret("sec_moved")), { leaseId: "lease_y", expiresAt: new Date(), current: { version: "2", sealedValue: stored.sealedValue } }),
    );

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain("secret sec_moved version 2 failed its integrity check");
  });

  it("issue without current version is not found", async () => {
    const error = await adapterErrorOf(() => adapter.issue(adapterCall(localSecret("sec_empty")), { leaseId: "lease_e", expiresAt: new Date(), current: null }));

    expect(error).toBeInstanceOf(UpstreamNotFound);
    expect(error.message).toContain("sec_empty has no current version");
  });

  it("issue without stored value is not found", async () => {
    const error = await adapterErrorOf(() =>
      adapter.issue(adapterCall(localSecret("sec_novalue")), { leaseId: "lease_n", expiresAt: new Date(), current: { version: "3", sealedValue: null } }),
    );

    expect(error).toBeInstanceOf(UpstreamNotFound);
    expect(error.message).toBe("secret sec_novalue version 3 has no stored value");
  });

  it("createPending without value or policy is rejected", async () => {
    const error = await adapterErrorOf(() => adapter.createPending(adapterCall(localSecret("sec_nothing")), { rotationId: null, current: null }));

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain("`value`");
    expect(error.message).toContain("`generate`");
  });

  it("generates from the secret's policy", async () => {
    const secret = localSecret("sec_generated", { length: 40, classes: ["lower", "digits"], field: "api_key" });

    const pending = await adapter.createPending(adapterCall(secret), { rotationId: null, current: null });
    const issued = await adapter.issue(adapterCall(secret), { leaseId: "lease_g", expiresAt: new Date(), current: pending });

    expect(Object.keys(pending.data)).toEqual(["api_key"]);
    expect(pending.data["api_key"]).toMatch(/^[a-z0-9]{40}$/);
    expect(pending.data["api_key"]).toMatch(/[a-z]/);
    expect(pending.data["api_key"]).toMatch(/[0-9]/);
    expect(issued.data).toEqual(pending.data);
  });

  it("a given value wins over the policy", async () => {
    const secret = localSecret("sec_both", { length: 16, classes: ["upper"], field: "token" });

    const pending = await adapter.createPending(adapterCall(secret), { rotationId: null, current: null, value: { token: "operator-chosen" } });

    expect(pending.data).toEqual({ token: "operator-chosen" });
  });

  it.each([
    { case: "length below class count", generate: { length: 2, classes: ["lower", "upper", "digits"], field: "v" }, names: ["generate.length"] },
    { case: "unknown class", generate: { length: 8, classes: ["emoji"], field: "v" }, names: ["generate.classes"] },
    { case: "no classes", generate: { length: 8, classes: [], field: "v" }, names: ["generate.classes"] },
    { case: "empty field", generate: { length: 8, classes: ["lower"], field: "" }, names: ["generate.field"] },
  ])("rejects policy with $case", async ({ generate, names }) => {
    const secret = localSecret("sec_badpolicy", generate as never);

    const error = await adapterErrorOf(() => adapter.createPending(adapterCall(secret), { rotationId: null, current: null }));

    expect(error).toBeInstanceOf(UpstreamRejected);
    for (const name of names) {
      expect(error.message).toContain(name);
    }
  });

  it.each([
    { case: "empty object", value: {}, message: "must have at least one field" },
    { case: "number field", value: { password: 12345, user: "u" }, message: "password is not" },
    { case: "two non-string fields", value: { a: null, b: { nested: "x" } }, message: "a, b are not" },
    { case: "array", value: ["secret-in-array"], message: "must be an object of string fields" },
    { case: "string", value: "bare-secret-string", message: "must be an object of string fields" },
  ])("rejects value that is $case", async ({ value, message }) => {
    const error = await adapterErrorOf(() =>
      adapter.createPending(adapterCall(localSecret("sec_badvalue")), { rotationId: null, current: null, value: value as never }),
    );

    expect(error).toBeInstanceOf(UpstreamRejected);
    expect(error.message).toContain(message);
    expect(error.message).not.toContain("12345");
    expect(error.message).not.toContain("secret-in-array");
    expect(error.message).not.toContain("bare-secret-string");
  });

  it("testPending opens the pending value", async () => {
    const secret = localSecret("sec_pending");
    const pending = await adapter.createPending(adapterCall(secret), { rotationId: "rot_p", current: null, value: VALUE });

    await expect(adapter.testPending(adapterCall(secret), pending)).resolves.toBeUndefined();
    await expect(
      adapter.testPending(adapterCall(secret), { ...pending, sealedValue: replacePart(pending.sealedValue!, 4, flipByte) }),
    ).rejects.toBeInstanceOf(UpstreamRejected);
  });

  it("steps without upstream resolve", async () => {
    const call = adapterCall(localSecret("sec_noop"));
    const version: VersionRef = { version: "1", sealedValue: null };

    await expect(adapter.renew(call, { upstreamLeaseId: "x" }, new Date())).resolves.toBeUndefined();
    await expect(adapter.revoke(call, { upstreamLeaseId: "x" })).resolves.toBeUndefined();
    await expect(adapter.setPending(call, version)).resolves.toBeUndefined();
    await expect(adapter.finishPending(call, version, null)).resolves.toBeUndefined();
    await expect(adapter.discardPending(call, version, null)).resolves.toBeUndefined();
    await expect(adapter.close()).resolves.toBeUndefined();
  });

  it("sealer failure is retryable", async () => {
    const failing: ValueSealer = {
      seal: () => Promise.reject(new Error("database unreachable")),
      open: () => Promise.reject(new Error("database unreachable")),
    };
    const stored = await sealedVersion(adapter, "sec_down", VALUE);

    const error = await adapterErrorOf(() =>
      new LocalAdapter({ sealer: failing }).issue(adapterCall(localSecret("sec_down")), { leaseId: "lease_d", expiresAt: new Date(), current: stored }),
    );

    expect(error).toBeInstanceOf(UpstreamUnavailable);
    expect(error.retryable).toBe(true);
  });

  it("missing master key names its id", async () => {
    const stored = await sealedVersion(adapter, "sec_lostkey", VALUE);
    const [otherKey] = randomKeys(1);
    const replica = replicaOf(broker, environmentRing(otherKey!));

    const error = await adapterErrorOf(() => replica.adapter.issue(adapterCall(localSecret("sec_lostkey")), { leaseId: "lease_l", expiresAt: new Date(), current: stored }));

    expect(error).toBeInstanceOf(UpstreamUnavailable);
    const cause = (error.cause as Error).message;
    expect(cause).toContain(`master key ${broker.deps.masterKeys.currentKeyId}`);
    expect(cause).toContain("BROKER_MASTER_KEY does not contain");
    expect(cause).not.toContain(otherKey!.toString("base64"));
  });
});

describe("local adapter settings", () => {
  const adapter = new LocalAdapter({ sealer: { seal: () => Promise.reject(new Error("unused")), open: () => Promise.reject(new Error("unused")) } });

  it.each([{ settings: undefined }, { settings: {} }])("accepts $settings", ({ settings }) => {
    expect(adapter.parseSettings("static", settings)).toEqual({});
  });

  it.each([
    { case: "dynamic kind", kind: "dynamic", settings: {}, names: ["kind"] },
    { case: "unknown key", kind: "static", settings: { path: "x" }, names: ["path"] },
    { case: "two unknown keys", kind: "static", settings: { path: "x", mount: "kv" }, names: ["path", "mount"] },
    { case: "null", kind: "static", settings: null, names: ["settings"] },
    { case: "array", kind: "static", settings: [], names: ["settings"] },
    { case: "string", kind: "static", settings: "plain", names: ["settings"] },
    { case: "number", kind: "static", settings: 7, names: ["settings"] },
  ])("rejects $case", ({ kind, settings, names }) => {
    let thrown: unknown;
    try {
      adapter.parseSettings(kind as never, settings);
    } catch (error) {
      thrown = error;
    }

    expect(thrown).toBeInstanceOf(InvalidAdapterSettings);
    const invalid = thrown as InvalidAdapterSettings;
    expect(invalid.code).toBe("invalid_settings");
    expect(invalid.invalidSettings.map((entry) => entry.name)).toEqual(names);
    expect(invalid.invalidSettings.every((entry) => entry.reason.length > 0)).toBe(true);
  });
});

describe("generated values through the adapter", () => {
  const adapter = new LocalAdapter({ sealer: { seal: async () => "sealed", open: () => Promise.reject(new Error("unused")) } });

  it("each draw honours length and classes", async () => {
    const classes = ["lower", "upper", "digits", "symbols"] as const;
    const allowed = new Set(classes.flatMap((name) => [...CHARACTER_CLASSES[name]]));
    const secret = localSecret("sec_draws", { length: 12, classes: [...classes], field: "password" });

    for (let draw = 0; draw < 200; draw += 1) {
      const { data } = await adapter.createPending(adapterCall(secret), { rotationId: null, current: null });
      const value = data["password"]!;
      expect(value).toHaveLength(12);
      for (const name of classes) {
        expect([...value].some((character) => CHARACTER_CLASSES[name].includes(character)), `${name} in draw ${draw}`).toBe(true);
      }
      expect([...value].every((character) => allowed.has(character))).toBe(true);
    }
  });
});
