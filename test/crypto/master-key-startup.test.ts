import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalAdapter } from "../../adapters/local/local-adapter.js";
import { SYSTEM_CONTEXT } from "../../broker/audit/audit-types.js";
import { ConfigError } from "../../broker/config/config.js";
import { rotateMasterKey } from "../../broker/crypto/master-key-rotation.js";
import { masterKeyId } from "../../broker/crypto/master-key-ring.js";
import { signingKeySealContext } from "../../broker/crypto/signing-keys.js";
import { signingKeys } from "../../broker/db/schema.js";
import { createLogger } from "../../broker/logging/logger.js";
import { checkMasterKeyOpensStoredKeys, initializeOnFirstStart, openRuntime, type Runtime } from "../../broker/server/bootstrap.js";
import { keyEncodings, randomKeys, sealedVersion, sealV1 } from "../support/master-key-fixtures.js";
import { testConfig } from "../support/test-broker.js";
import { createScratchDatabase, type ScratchDatabase } from "../support/test-database.js";

describe("start-up master key check", () => {
  const [firstKey, secondKey] = randomKeys(2);
  let dataDir: string;
  let scratch: ScratchDatabase | undefined;

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "sb-startup-"));
    scratch = await createScratchDatabase("sbstart");
  });

  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
    await scratch?.drop();
  });

  /** Opens the runtime as `serve` does, on PGlite in the data directory or on the scratch PostgreSQL database. */
  function open(masterKey: string | undefined): Promise<Runtime> {
    const config = testConfig({ dataDir, databaseUrl: scratch?.url, masterKey, logLevel: "silent" });
    return openRuntime(config, { log: createLogger({ level: "silent" }) });
  }

  /** Runs the start-up check and returns its error, closing the runtime when the check passed. */
  async function startupError(masterKey: string | undefined): Promise<ConfigError | undefined> {
    const runtime = await open(masterKey);
    try {
      await checkMasterKeyOpensStoredKeys(runtime);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return error as ConfigError;
    }
    await runtime.database.close();
    return undefined;
  }

  /** Initializes the database under `masterKey` and seals a value, so that a signing key and a data key exist. */
  async function initialize(masterKey: string | undefined): Promise<void> {
    const runtime = await open(masterKey);
    try {
      await initializeOnFirstStart(runtime);
      await sealedVersion(new LocalAdapter({ sealer: runtime.deps.dataKeys }), "sec_startup", { password: "kept" });
    } finally {
      await runtime.database.close();
    }
  }

  it("passes with the initializing key", async () => {
    await initialize(firstKey!.toString("base64"));

    expect(await startupError(firstKey!.toString("base64"))).toBeUndefined();
  });

  it("wrong key fails naming the key id", async () => {
    await initialize(firstKey!.toString("base64"));

    const error = await startupError(secondKey!.toString("base64"));

    expect(error?.message).toBe(
      `BROKER_MASTER_KEY cannot open the keys stored in this database: 1 data key and 1 signing key are wrapped by master key ${masterKeyId(firstKey!)}, ` +
        `which it does not contain (BROKER_MASTER_KEY contains ${masterKeyId(secondKey!)}); ` +
        "start with the master key that initialized it, listed after the current key if you are rotating",
    );
    for (const encoding of [...keyEncodings(firstKey!), ...keyEncodings(secondKey!)]) {
      expect(error!.message).not.toContain(encoding);
    }
  });

  it("new key first and old key second passes", async () => {
    await initialize(firstKey!.toString("base64"));

    expect(await startupError(`${secondKey!.toString("base64")},${firstKey!.toString("hex")}`)).toBeUndefined();
  });

  it("after rotation the old key alone fails", async () => {
    await initialize(firstKey!.toString("base64"));
    const runtime = await open(`${secondKey!.toString("base64")},${firstKey!.toString("base64")}`);
    await rotateMasterKey(runtime.deps, SYSTEM_CONTEXT);
    await runtime.database.close();

    const newKeyOnly = await startupError(secondKey!.toString("base64"));
    const oldKeyOnly = await startupError(firstKey!.toString("base64"));

    expect(newKeyOnly).toBeUndefined();
    expect(oldKeyOnly?.message).toContain(`wrapped by master key ${masterKeyId(secondKey!)}, which it does not contain`);
  });

  it("v1 signing key opens, and wrong key fails", async () => {
    await initialize(firstKey!.toString("base64"));
    const runtime = await open(firstKey!.toString("base64"));
    const [row] = await runtime.deps.db.select().from(signingKeys);
    const privateJwk = runtime.deps.masterKeys.open(row!.privateKeyCiphertext, signingKeySealContext(row!.kid));
    await runtime.deps.db
      .update(signingKeys)
      .set({ privateKeyCiphertext: sealV1(firstKey!, privateJwk, signingKeySealContext(row!.kid)) })
      .where(eq(signingKeys.kid, row!.kid));
    await runtime.database.close();

    const rightKey = await startupError(firstKey!.toString("base64"));
    const wrongKey = await startupError(`${secondKey!.toString("base64")},${randomKeys(1)[0]!.toString("base64")}`);

    expect(rightKey).toBeUndefined();
    expect(wrongKey?.message).toContain("1 signing key is sealed in a v1 or damaged envelope that none of its keys opens");
    expect(wrongKey?.message).toContain(`1 data key is wrapped by master key ${masterKeyId(firstKey!)}`);
  });

  it("file mode names the key file", async () => {
    await initialize(firstKey!.toString("base64"));

    const error = await startupError(undefined);

    expect(error?.message).toContain(`the master key file ${path.join(dataDir, "master.key")} cannot open the keys stored in this database`);
  });
});
