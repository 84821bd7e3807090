import { createHmac, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigError } from "../../broker/config/config.js";
import { EnvelopeError } from "../../broker/crypto/envelope.js";
import { loadMasterKey, MASTER_KEY_FILE } from "../../broker/crypto/master-key.js";
import { MasterKeyRing, masterKeyId } from "../../broker/crypto/master-key-ring.js";
import { environmentRing, keyEncodings, randomKeys, sealV1 } from "../support/master-key-fixtures.js";

function configErrorOf(work: () => unknown): Promise<ConfigError> {
  return Promise.resolve()
    .then(work)
    .then(
      () => {
        throw new Error("expected a ConfigError");
      },
      (error: unknown) => {
        expect(error).toBeInstanceOf(ConfigError);
        return error as ConfigError;
      },
    );
}

describe("master key ids", () => {
  it("derive from HMAC-SHA256 of a fixed label", () => {
    const key = randomBytes(32);

    expect(masterKeyId(key)).toBe(createHmac("sha256", key).update("secrets-broker master key id").digest("hex").slice(0, 16));
    expect(masterKeyId(key)).toMatch(/^[0-9a-f]{16}$/);
  });

  it("differ between keys", () => {
    const ids = new Set(randomKeys(50).map(masterKeyId));

    expect(ids.size).toBe(50);
  });
});

describe("BROKER_MASTER_KEY", () => {
  it("reads one base64 key", async () => {
    const [key] = randomKeys(1);

    const ring = await loadMasterKey(key!.toString("base64"), "/nonexistent");

    expect(ring.source).toBe("environment");
    expect(ring.keyIds).toEqual([masterKeyId(key!)]);
    expect(ring.currentKeyId).toBe(masterKeyId(key!));
  });

  it("reads several keys, current first", async () => {
    const [newKey, oldKey, oldestKey] = randomKeys(3);

    const ring = await loadMasterKey(`${newKey!.toString("base64")}, ${oldKey!.toString("hex")} ,${oldestKey!.toString("base64url")}`, "/nonexistent");

    expect(ring.keyIds).toEqual([newKey, oldKey, oldestKey].map((key) => masterKeyId(key!)));
    expect(ring.currentKeyId).toBe(masterKeyId(newKey!));
  });

  it.each([
    { case: "short key", value: () => randomBytes(16).toString("base64"), message: "BROKER_MASTER_KEY must contain 32 bytes as base64 or hex; generate one with: openssl rand -base64 32" },
    { case: "long hex", value: () => randomBytes(33).toString("hex"), message: "BROKER_MASTER_KEY must contain 32 bytes as base64 or hex; generate one with: openssl rand -base64 32" },
    { case: "not base64", value: () => "not a key at all but a sentence!!", message: "BROKER_MASTER_KEY must contain 32 bytes" },
    { case: "bad second key", value: () => `${randomBytes(32).toString("base64")},${randomBytes(31).toString("base64")}`, message: "BROKER_MASTER_KEY key 2 of 2 must contain 32 bytes as base64 or hex; generate one with: openssl rand -base64 32" },
    { case: "empty entry", value: () => `${randomBytes(32).toString("base64")},,${randomBytes(32).toString("base64")}`, message: "BROKER_MASTER_KEY key 2 of 3 is empty; list the keys separated by commas, the current key first" },
    { case: "trailing comma", value: () => `${randomBytes(32).toString("base64")},`, message: "BROKER_MASTER_KEY key 2 of 2 is empty" },
  ])("rejects $case", async ({ value, message }) => {
    const configured = value();

    const error = await configErrorOf(() => loadMasterKey(configured, "/nonexistent"));

    expect(error.message).toContain(message);
    for (const entry of configured.split(",").filter((part) => part.length > 8)) {
      expect(error.message).not.toContain(entry.trim());
    }
  });

  it("rejects a repeated key naming its id", async () => {
    const [key, other] = randomKeys(2);
    const configured = [key, other, key].map((entry) => entry!.toString("base64")).join(",");

    const error = await configErrorOf(() => loadMasterKey(configured, "/nonexistent"));

    expect(error.message).toBe(`BROKER_MASTER_KEY key 3 of 3 repeats BROKER_MASTER_KEY key 1 of 3 (master key ${masterKeyId(key!)}); list each key once`);
  });
});

describe("master key file", () => {
  let dataDir: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "sb-mk-"));
  });

  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("is created with mode 0600 on first use", async () => {
    const ring = await loadMasterKey(undefined, path.join(dataDir, "fresh"));
    const file = path.join(dataDir, "fresh", MASTER_KEY_FILE);

    expect(ring.source).toBe("file");
    expect(ring.file).toBe(file);
    expect(ring.created).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const lines = (await readFile(file, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(masterKeyId(Buffer.from(lines[0]!, "base64"))).toBe(ring.currentKeyId);
  });

  it("is read back with the same key", async () => {
    const first = await loadMasterKey(undefined, dataDir);

    const second = await loadMasterKey(undefined, dataDir);

    expect(second.created).toBe(false);
    expect(second.keyIds).toEqual(first.keyIds);
  });

  it("reads one key per line, current first", async () => {
    const [newKey, oldKey] = randomKeys(2);
    await writeFile(path.join(dataDir, MASTER_KEY_FILE), `${newKey!.toString("base64")}\n\n${oldKey!.toString("hex")}\n`, { mode: 0o600 });

    const ring = await loadMasterKey(undefined, dataDir);

    expect(ring.keyIds).toEqual([masterKeyId(newKey!), masterKeyId(oldKey!)]);
  });

  it.each([
    { case: "empty file", contents: "\n", message: "contains no key; restore it from a backup" },
    { case: "bad second line", contents: `${randomBytes(32).toString("base64")}\nshort\n`, message: "line 2 must contain 32 bytes as base64 or hex" },
  ])("rejects $case naming the file", async ({ contents, message }) => {
    const file = path.join(dataDir, MASTER_KEY_FILE);
    await writeFile(file, contents, { mode: 0o600 });

    const error = await configErrorOf(() => loadMasterKey(undefined, dataDir));

    expect(error.message).toContain(`master key file ${file}`);
    expect(error.message).toContain(message);
  });
});

describe("MasterKeyRing envelopes", () => {
  const [newKey, oldKey] = randomKeys(2);

  it("seals under the current key with its id", () => {
    const ring = environmentRing(newKey!, oldKey!);

    const sealed = ring.seal(Buffer.from("private key"), "signing-key:abc");

    expect(sealed.startsWith(`v2.${masterKeyId(newKey!)}.`)).toBe(true);
    expect(ring.keyIdOf(sealed)).toBe(masterKeyId(newKey!));
    expect(ring.open(sealed, "signing-key:abc").toString()).toBe("private key");
  });

  it("opens with an older key by id", () => {
    const sealed = environmentRing(oldKey!).seal(Buffer.from("wrapped"), "data-key:dk_1:value");

    const opened = environmentRing(newKey!, oldKey!).openWithKeyId(sealed, "data-key:dk_1:value");

    expect(opened.plaintext.toString()).toBe("wrapped");
    expect(opened.keyId).toBe(masterKeyId(oldKey!));
  });

  it("opens v1 envelopes with any loaded key", () => {
    const sealed = sealV1(oldKey!, Buffer.from("legacy"), "signing-key:old");

    const opened = environmentRing(newKey!, oldKey!).openWithKeyId(sealed, "signing-key:old");

    expect(opened.plaintext.toString()).toBe("legacy");
    expect(opened.keyId).toBe(masterKeyId(oldKey!));
    expect(environmentRing(newKey!, oldKey!).keyIdOf(sealed)).toBeNull();
  });

  it("v1 envelope no key opens is rejected", () => {
    const sealed = sealV1(oldKey!, Buffer.from("legacy"), "signing-key:old");

    expect(() => environmentRing(newKey!).open(sealed, "signing-key:old")).toThrow(
      expect.objectContaining({ code: "integrity_check_failed", message: expect.stringContaining("opens with none of the keys in BROKER_MASTER_KEY") }),
    );
  });

  it("missing key is named by id only", () => {
    const sealed = environmentRing(oldKey!).seal(Buffer.from("wrapped"), "ctx");

    let thrown: unknown;
    try {
      environmentRing(newKey!).open(sealed, "ctx");
    } catch (error) {
      thrown = error;
    }

    expect(thrown).toBeInstanceOf(EnvelopeError);
    const error = thrown as EnvelopeError;
    expect(error.code).toBe("unknown_key");
    expect(error.keyId).toBe(masterKeyId(oldKey!));
    expect(error.message).toContain(`sealed with master key ${masterKeyId(oldKey!)}, which BROKER_MASTER_KEY does not contain (it contains ${masterKeyId(newKey!)})`);
    for (const encoding of [...keyEncodings(oldKey!), ...keyEncodings(newKey!)]) {
      expect(error.message).not.toContain(encoding);
    }
  });

  it("other context fails integrity check", () => {
    const ring = environmentRing(newKey!);
    const sealed = ring.seal(Buffer.from("wrapped"), "signing-key:one");

    expect(() => ring.open(sealed, "signing-key:two")).toThrow(expect.objectContaining({ code: "integrity_check_failed" }));
  });

  it("truncated tag is malformed", () => {
    const ring = environmentRing(newKey!);
    const parts = ring.seal(Buffer.from("wrapped"), "ctx").split(".");
    parts[3] = Buffer.from(parts[3]!, "base64url").subarray(0, 12).toString("base64url");

    expect(() => ring.open(parts.join("."), "ctx")).toThrow(expect.objectContaining({ code: "malformed_envelope" }));
  });

  it("promote makes a key current and keeps the others", () => {
    const ring = environmentRing(oldKey!);

    ring.promote(newKey!);

    expect(ring.keyIds).toEqual([masterKeyId(newKey!), masterKeyId(oldKey!)]);
    expect(ring.keyIdOf(ring.seal(Buffer.from("x"), "ctx"))).toBe(masterKeyId(newKey!));
  });

  it("file ring names its file in messages", () => {
    const ring = new MasterKeyRing([newKey!], "file", "/data/master.key");
    const sealed = environmentRing(oldKey!).seal(Buffer.from("x"), "ctx");

    expect(() => ring.open(sealed, "ctx")).toThrow(/which the master key file \/data\/master\.key does not contain/);
  });
});
