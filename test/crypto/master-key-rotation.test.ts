import { chmod, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SecretData, VersionRef } from "../../adapters/contract.js";
import { UpstreamUnavailable } from "../../adapters/errors.js";
import { LocalAdapter } from "../../adapters/local/local-adapter.js";
import { dataKeyWrapContext } from "../../broker/crypto/data-key-ring.js";
import { loadMasterKey, MASTER_KEY_FILE } from "../../broker/crypto/master-key.js";
import { replaceKeyFile } from "../../broker/crypto/master-key-file.js";
import { type MasterKeyRing, masterKeyId } from "../../broker/crypto/master-key-ring.js";
import { describeMissingMasterKeys, masterKeyUsage } from "../../broker/crypto/master-key-usage.js";
import { signingKeySealContext } from "../../broker/crypto/signing-keys.js";
import { createWorkload, issueToken, type Workload } from "../tokens/oauth-fixtures.js";
import { auditEvents, expectProblem } from "../support/register-fixtures.js";
import {
  adapterCall,
  environmentRing,
  keyEncodings,
  localSecret,
  randomKeys,
  replicaOf,
  sealedVersion,
  sealV1,
  verifyWithJwks,
} from "../support/master-key-fixtures.js";
import { startTestBroker, type TestBroker, type TestResponse } from "../support/test-broker.js";

const VALUES: SecretData[] = [{ password: "first-value-0001" }, { password: "second-value-0002" }, { api_key: "third-value-0003" }];

interface StoredValue {
  secretId: string;
  version: VersionRef;
  value: SecretData;
}

/** Seals `VALUES` as the first versions of three local secrets. */
async function sealValues(adapter: LocalAdapter): Promise<StoredValue[]> {
  return Promise.all(
    VALUES.map(async (value, index) => {
      const secretId = `sec_rotation_${index}`;
      return { secretId, version: await sealedVersion(adapter, secretId, value), value };
    }),
  );
}

async function openValues(adapter: LocalAdapter, stored: StoredValue[]): Promise<SecretData[]> {
  return Promise.all(
    stored.map(async (entry) => (await adapter.issue(adapterCall(localSecret(entry.secretId)), { leaseId: "lease_r", expiresAt: new Date(), current: entry.version })).data),
  );
}

function rotate(target: TestBroker, token?: string): Promise<TestResponse> {
  return target.request("POST", "/v1/sys/master-key/rotate", token === undefined ? {} : { token });
}

async function dataKeyMasterIds(broker: TestBroker): Promise<string[]> {
  return (await broker.query<{ master_key_id: string }>("select master_key_id from data_keys order by id")).map((row) => row.master_key_id);
}

async function signingKeyEnvelopes(broker: TestBroker): Promise<string[]> {
  return (await broker.query<{ private_key_ciphertext: string }>("select private_key_ciphertext from signing_keys order by kid")).map(
    (row) => row.private_key_ciphertext,
  );
}

/** Adds a second signing key that signs at once, so that rotations re-wrap more than one. */
async function addSigningKey(broker: TestBroker): Promise<void> {
  const response = await broker.request("POST", "/v1/signing-keys/rotate", { body: { publish_delay: 0 } });
  expect(response.status, response.text).toBe(201);
}

describe("master key rotation with BROKER_MASTER_KEY", () => {
  const [oldKey, newKey] = randomKeys(2);
  const oldId = masterKeyId(oldKey!);
  const newId = masterKeyId(newKey!);
  let broker: TestBroker;
  let workload: Workload;
  let stored: StoredValue[];
  let firstToken: string;
  let fingerprintKey: Buffer;

  beforeEach(async () => {
    broker = await startTestBroker({ masterKeys: environmentRing(oldKey!) });
    workload = await createWorkload(broker);
    firstToken = (await issueToken(broker, workload)).access_token;
    await addSigningKey(broker);
    stored = await sealValues(new LocalAdapter({ sealer: broker.deps.dataKeys }));
    fingerprintKey = await broker.deps.dataKeys.fingerprintKey();
  });

  afterEach(async () => {
    await broker.close();
  });

  it("re-wraps every stored key under the new key", async () => {
    const restarted = replicaOf(broker, environmentRing(newKey!, oldKey!));

    const response = await rotate(restarted);

    expect(response.status, response.text).toBe(200);
    expect(response.json).toEqual({
      source: "environment",
      current_key_id: newId,
      generated_key: false,
      rewrapped: [{ master_key_id: oldId, data_keys: 2, signing_keys: 2 }],
      key_ids_in_use: [newId],
      retired_key_ids: [oldId],
    });
    expect(await dataKeyMasterIds(broker)).toEqual([newId, newId]);
    for (const envelope of await signingKeyEnvelopes(broker)) {
      expect(envelope.startsWith(`v2.${newId}.`)).toBe(true);
    }
  });

  it("stays readable while the rotation runs", async () => {
    const first = replicaOf(broker, environmentRing(newKey!, oldKey!));
    const second = replicaOf(broker, environmentRing(newKey!, oldKey!));

    const [response, ...work] = await Promise.all([
      rotate(first),
      openValues(second.adapter, stored),
      issueToken(second, workload),
      openValues(first.adapter, stored),
      issueToken(first, workload),
      second.deps.dataKeys.fingerprintKey(),
    ]);

    expect(response.status, response.text).toBe(200);
    expect(work[0]).toEqual(VALUES);
    expect(work[2]).toEqual(VALUES);
    expect((work[4] as Buffer).equals(fingerprintKey)).toBe(true);
    for (const token of [firstToken, (work[1] as { access_token: string }).access_token, (work[3] as { access_token: string }).access_token]) {
      await expect(verifyWithJwks(second, token)).resolves.toBeUndefined();
    }
  });

  it("new key alone reads everything afterwards", async () => {
    expect((await rotate(replicaOf(broker, environmentRing(newKey!, oldKey!)))).status).toBe(200);

    const newOnly = replicaOf(broker, environmentRing(newKey!));

    expect(await openValues(newOnly.adapter, stored)).toEqual(VALUES);
    expect((await newOnly.deps.dataKeys.fingerprintKey()).equals(fingerprintKey)).toBe(true);
    const token = (await issueToken(newOnly, workload)).access_token;
    await expect(verifyWithJwks(newOnly, token)).resolves.toBeUndefined();
    await expect(verifyWithJwks(newOnly, firstToken)).resolves.toBeUndefined();
    expect(describeMissingMasterKeys(await masterKeyUsage(broker.deps.db, newOnly.deps.masterKeys), newOnly.deps.masterKeys)).toBeNull();
  });

  it("old key alone fails naming the new key id", async () => {
    expect((await rotate(replicaOf(broker, environmentRing(newKey!, oldKey!)))).status).toBe(200);
    const oldOnly = replicaOf(broker, environmentRing(oldKey!));

    const opened = await oldOnly.adapter
      .issue(adapterCall(localSecret(stored[0]!.secretId)), { leaseId: "lease_o", expiresAt: new Date(), current: stored[0]!.version })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    const missing = describeMissingMasterKeys(await masterKeyUsage(broker.deps.db, oldOnly.deps.masterKeys), oldOnly.deps.masterKeys);

    expect(opened).toBeInstanceOf(UpstreamUnavailable);
    expect(((opened as Error).cause as Error).message).toContain(`sealed with master key ${newId}, which BROKER_MASTER_KEY does not contain (it contains ${oldId})`);
    expect(missing).toBe(`2 data keys and 2 signing keys are wrapped by master key ${newId}, which it does not contain (BROKER_MASTER_KEY contains ${oldId})`);
    for (const encoding of [...keyEncodings(oldKey!), ...keyEncodings(newKey!)]) {
      expect(missing).not.toContain(encoding);
      expect(((opened as Error).cause as Error).message).not.toContain(encoding);
    }
  });

  it("audit events contain ids and counts only", async () => {
    const restarted = replicaOf(broker, environmentRing(newKey!, oldKey!));
    const dataKeyRows = await broker.query<{ id: string; purpose: string; wrapped_key: string }>("select id, purpose, wrapped_key from data_keys order by id");
    const ciphertextsBefore = [...dataKeyRows.map((row) => row.wrapped_key), ...(await signingKeyEnvelopes(broker))];
    const dataKeyMaterial = dataKeyRows.flatMap((row) => keyEncodings(restarted.deps.masterKeys.open(row.wrapped_key, dataKeyWrapContext(row.id, row.purpose))));

    expect((await rotate(restarted)).status).toBe(200);

    const rewraps = await auditEvents(broker, "action=master_key.rewrap");
    const rotations = await auditEvents(broker, "action=master_key.rotate");
    expect(rewraps.map((event) => [event.target, event.details["kind"], event.details["count"]])).toEqual([
      [newId, "data_key", 2],
      [newId, "signing_key", 2],
    ]);
    expect(rewraps[0]!.details["ids"]).toEqual(dataKeyRows.map((row) => row.id));
    expect(rewraps[0]!.details["from"]).toEqual([{ master_key_id: oldId, data_keys: 2, signing_keys: 0 }]);
    expect(rotations).toHaveLength(1);
    expect(rotations[0]!.actor).toMatch(/^operator:tok_/);
    expect(rotations[0]!.details).toMatchObject({ source: "environment", master_key_id: newId, retired_key_ids: [oldId] });

    const text = JSON.stringify([...rewraps, ...rotations]);
    const ciphertextsAfter = [...(await broker.query<{ wrapped_key: string }>("select wrapped_key from data_keys")).map((row) => row.wrapped_key), ...(await signingKeyEnvelopes(broker))];
    for (const secret of [...keyEncodings(oldKey!), ...keyEncodings(newKey!), ...dataKeyMaterial, ...ciphertextsBefore, ...ciphertextsAfter]) {
      expect(text).not.toContain(secret);
    }
    expect(broker.logs.join("")).not.toContain(newKey!.toString("base64"));
    expect(broker.logs.join("")).toContain("master key rotation finished");
  });

  it("second rotation has nothing to do", async () => {
    const restarted = replicaOf(broker, environmentRing(newKey!, oldKey!));
    expect((await rotate(restarted)).status).toBe(200);

    const again = await rotate(restarted);

    expect(again.status, again.text).toBe(200);
    expect(again.json.rewrapped).toEqual([]);
    expect(again.json.key_ids_in_use).toEqual([newId]);
    expect(await auditEvents(broker, "action=master_key.rewrap")).toHaveLength(2);
  });

  it("missing old key stops rotation", async () => {
    const wrongList = replicaOf(broker, environmentRing(newKey!));

    const response = await rotate(wrongList);

    expectProblem(response, 409, "invalid_state");
    expect(response.json.detail).toContain(`master key ${oldId}, which BROKER_MASTER_KEY does not contain`);
    expect(response.json.detail).toMatch(/^cannot re-wrap data key dk_[0-9a-f]{24}: /);
    for (const encoding of [...keyEncodings(oldKey!), ...keyEncodings(newKey!)]) {
      expect(response.text).not.toContain(encoding);
    }
    expect(await dataKeyMasterIds(broker)).toEqual([oldId, oldId]);
    expect(broker.logs.join("")).toContain("master key rotation failed");
  });

  it("status shows usage per master key", async () => {
    const before = await broker.request("GET", "/v1/sys/master-key");
    const restarted = replicaOf(broker, environmentRing(newKey!, oldKey!));
    expect((await rotate(restarted)).status).toBe(200);
    const after = await restarted.request("GET", "/v1/sys/master-key");

    expect(before.status, before.text).toBe(200);
    expect(before.json).toEqual({
      source: "environment",
      current_key_id: oldId,
      key_ids: [oldId],
      usage: [{ master_key_id: oldId, current: true, loaded: true, data_keys: 2, signing_keys: 2 }],
    });
    expect(after.json).toEqual({
      source: "environment",
      current_key_id: newId,
      key_ids: [newId, oldId],
      usage: [
        { master_key_id: newId, current: true, loaded: true, data_keys: 2, signing_keys: 2 },
        { master_key_id: oldId, current: false, loaded: true, data_keys: 0, signing_keys: 0 },
      ],
    });
  });

  it("re-wraps v1 signing keys", async () => {
    const [row] = await broker.query<{ kid: string; private_key_ciphertext: string }>("select kid, private_key_ciphertext from signing_keys order by activates_at limit 1");
    const privateJwk = broker.deps.masterKeys.open(row!.private_key_ciphertext, signingKeySealContext(row!.kid));
    await broker.query(`update signing_keys set private_key_ciphertext = '${sealV1(oldKey!, privateJwk, signingKeySealContext(row!.kid))}' where kid = '${row!.kid}'`);
    const restarted = replicaOf(broker, environmentRing(newKey!, oldKey!));

    const status = await restarted.request("GET", "/v1/sys/master-key");
    const response = await rotate(restarted);

    expect(status.json.usage).toContainEqual({ master_key_id: oldId, current: false, loaded: true, data_keys: 2, signing_keys: 2 });
    expect(response.json.rewrapped).toEqual([{ master_key_id: oldId, data_keys: 2, signing_keys: 2 }]);
    const [after] = await broker.query<{ private_key_ciphertext: string }>(`select private_key_ciphertext from signing_keys where kid = '${row!.kid}'`);
    expect(after!.private_key_ciphertext.startsWith(`v2.${newId}.`)).toBe(true);
    expect(replicaOf(broker, environmentRing(newKey!)).deps.masterKeys.open(after!.private_key_ciphertext, signingKeySealContext(row!.kid)).equals(privateJwk)).toBe(true);
  });

  it.each([
    { role: "operator" as const, method: "POST", path: "/v1/sys/master-key/rotate" },
    { role: "auditor" as const, method: "POST", path: "/v1/sys/master-key/rotate" },
    { role: "operator" as const, method: "GET", path: "/v1/sys/master-key" },
    { role: "auditor" as const, method: "GET", path: "/v1/sys/master-key" },
  ])("$role gets 403 on $method $path", async ({ role, method, path: route }) => {
    const response = await broker.request(method, route, { token: broker.tokens[role] });

    expectProblem(response, 403, "forbidden");
    expect(response.json.detail).toContain("admin role");
    expect(await dataKeyMasterIds(broker)).toEqual([oldId, oldId]);
  });

  it.each([
    { method: "POST", path: "/v1/sys/master-key/rotate" },
    { method: "GET", path: "/v1/sys/master-key" },
  ])("$method $path without token gets 401", async ({ method, path: route }) => {
    const response = await broker.request(method, route, { token: null });

    expectProblem(response, 401, "unauthenticated");
  });

  it.each([
    { case: "unknown body field", options: { body: { key: "abc" } }, status: 400, code: "validation_failed" },
    { case: "invalid JSON", options: { rawBody: "{", headers: { "content-type": "application/json" } }, status: 400, code: "invalid_json" },
    { case: "text body", options: { rawBody: "rotate", headers: { "content-type": "text/plain" } }, status: 415, code: "unsupported_media_type" },
  ])("rotate rejects $case", async ({ options, status, code }) => {
    const response = await broker.request("POST", "/v1/sys/master-key/rotate", options);

    expectProblem(response, status, code);
    expect(await auditEvents(broker, "action=master_key.rotate")).toHaveLength(0);
  });

  it("status rejects query parameters", async () => {
    const response = await broker.request("GET", "/v1/sys/master-key?verbose=1");

    expectProblem(response, 400, "validation_failed");
  });
});

describe("master key rotation in file mode", () => {
  let dataDir: string;
  let keyFile: string;
  let masterKeys: MasterKeyRing;
  let broker: TestBroker;
  let workload: Workload;
  let stored: StoredValue[];
  let firstToken: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "sb-rotate-"));
    keyFile = path.join(dataDir, MASTER_KEY_FILE);
    masterKeys = await loadMasterKey(undefined, dataDir);
    broker = await startTestBroker({ masterKeys });
    workload = await createWorkload(broker);
    firstToken = (await issueToken(broker, workload)).access_token;
    stored = await sealValues(new LocalAdapter({ sealer: broker.deps.dataKeys }));
    await broker.deps.dataKeys.fingerprintKey();
  });

  afterEach(async () => {
    await broker.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function fileKeyIds(): Promise<string[]> {
    return (await readFile(keyFile, "utf8"))
      .trim()
      .split("\n")
      .map((line) => masterKeyId(Buffer.from(line, "base64")));
  }

  it("generates a key and rewrites the file", async () => {
    const oldId = masterKeys.currentKeyId;

    const response = await rotate(broker);

    expect(response.status, response.text).toBe(200);
    const newId = response.json.current_key_id as string;
    expect(newId).not.toBe(oldId);
    expect(response.json).toEqual({
      source: "file",
      current_key_id: newId,
      generated_key: true,
      rewrapped: [{ master_key_id: oldId, data_keys: 2, signing_keys: 1 }],
      key_ids_in_use: [newId],
      retired_key_ids: [oldId],
    });
    expect(await fileKeyIds()).toEqual([newId]);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect(masterKeys.keyIds).toEqual([newId, oldId]);
  });

  it("stays readable while the rotation runs", async () => {
    const [response, values, issued, fingerprint] = await Promise.all([
      rotate(broker),
      openValues(new LocalAdapter({ sealer: broker.deps.dataKeys }), stored),
      issueToken(broker, workload),
      broker.deps.dataKeys.fingerprintKey(),
    ]);

    expect(response.status, response.text).toBe(200);
    expect(values).toEqual(VALUES);
    expect(fingerprint).toHaveLength(32);
    await expect(verifyWithJwks(broker, issued.access_token)).resolves.toBeUndefined();
  });

  it("restart from the new file reads everything", async () => {
    expect((await rotate(broker)).status).toBe(200);

    const reloaded = await loadMasterKey(undefined, dataDir);
    const restarted = replicaOf(broker, reloaded);

    expect(reloaded.keyIds).toEqual([masterKeys.currentKeyId]);
    expect(await openValues(restarted.adapter, stored)).toEqual(VALUES);
    const token = (await issueToken(restarted, workload)).access_token;
    await expect(verifyWithJwks(restarted, token)).resolves.toBeUndefined();
    await expect(verifyWithJwks(restarted, firstToken)).resolves.toBeUndefined();
  });

  it("keeps mode 0600 when the file was wider", async () => {
    await chmod(keyFile, 0o644);

    expect((await rotate(broker)).status).toBe(200);

    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
  });

  it("finishes a rotation that stopped half way", async () => {
    const oldId = masterKeys.currentKeyId;
    const [pendingKey] = randomKeys(1);
    const oldLine = (await readFile(keyFile, "utf8")).trim();
    await replaceKeyFile(keyFile, [pendingKey!.toString("base64"), oldLine]);

    const response = await rotate(broker);

    expect(response.status, response.text).toBe(200);
    expect(response.json.generated_key).toBe(false);
    expect(response.json.current_key_id).toBe(masterKeyId(pendingKey!));
    expect(response.json.retired_key_ids).toEqual([oldId]);
    expect(await fileKeyIds()).toEqual([masterKeyId(pendingKey!)]);
  });

  it("concurrent rotations run one after the other", async () => {
    const responses = await Promise.all([rotate(broker), rotate(broker)]);

    expect(responses.map((response) => response.status)).toEqual([200, 200]);
    // Requests may reach the handler in either order; the later rotation re-wraps what the earlier one wrapped.
    const bodies = responses.map((response) => response.json);
    const later = bodies.find((body) => body.rewrapped[0]?.signing_keys === 1 && bodies.some((other) => other.current_key_id === body.rewrapped[0].master_key_id));
    const earlier = bodies.find((body) => body !== later);
    expect(later).toBeDefined();
    expect(later.current_key_id).not.toBe(earlier.current_key_id);
    expect(later.rewrapped).toEqual([{ master_key_id: earlier.current_key_id, data_keys: 2, signing_keys: 1 }]);
    expect(await fileKeyIds()).toEqual([later.current_key_id]);
    const restarted = replicaOf(broker, await loadMasterKey(undefined, dataDir));
    expect(await openValues(restarted.adapter, stored)).toEqual(VALUES);
  });

  it("status names the file source", async () => {
    const response = await broker.request("GET", "/v1/sys/master-key");

    expect(response.status, response.text).toBe(200);
    expect(response.json.source).toBe("file");
    expect(response.json.current_key_id).toBe(masterKeys.currentKeyId);
    expect(response.text).not.toContain(dataDir);
  });
});
