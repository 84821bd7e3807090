import { createCipheriv, randomBytes } from "node:crypto";
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from "jose";
import { LocalAdapter } from "../../adapters/local/local-adapter.js";
import type { AdapterCall, SecretData, SecretRef, VersionRef } from "../../adapters/contract.js";
import { DataKeyRing } from "../../broker/crypto/data-key-ring.js";
import { MasterKeyRing } from "../../broker/crypto/master-key-ring.js";
import type { BrokerDeps } from "../../broker/deps.js";
import { createApp } from "../../broker/http/app.js";
import { keyRetentionSeconds } from "../../broker/tokens/key-rotation.js";
import { SigningKeyRing } from "../../broker/tokens/signing-key-ring.js";
import { send, type TestBroker } from "./test-broker.js";

/**
 * Another broker process on the same database, such as a replica restarted with another
 * BROKER_MASTER_KEY: the test broker's database, clock, log and tokens with its own key
 * caches. `close` leaves the shared database open.
 */
export interface TestReplica extends TestBroker {
  adapter: LocalAdapter;
}

/** Returns a ring of these keys, current first, as if read from BROKER_MASTER_KEY. */
export function environmentRing(...keys: Buffer[]): MasterKeyRing {
  return new MasterKeyRing(keys, "environment");
}

/** Returns `count` fresh random 32-byte keys. */
export function randomKeys(count: number): Buffer[] {
  return Array.from({ length: count }, () => randomBytes(32));
}

/** Returns the encodings a key could leak in: base64, base64url and hex. */
export function keyEncodings(key: Buffer): string[] {
  return [key.toString("base64"), key.toString("base64url"), key.toString("hex")];
}

/** Builds a replica of the test broker with `masterKeys` and empty key caches, as a restarted process has. */
export function replicaOf(broker: TestBroker, masterKeys: MasterKeyRing): TestReplica {
  const { db, clock, log, config } = broker.deps;
  const dataKeys = new DataKeyRing({ db, clock, masterKeys, log });
  const deps: BrokerDeps = {
    ...broker.deps,
    masterKeys,
    keyRing: new SigningKeyRing(db, clock, masterKeys, keyRetentionSeconds(config)),
    dataKeys,
  };
  const app = createApp(deps);
  return {
    ...broker,
    deps,
    app,
    adapter: new LocalAdapter({ sealer: dataKeys }),
    request: (method, path, options = {}) => send(app, broker.tokens.admin, method, path, options),
    close: async () => undefined,
  };
}

/** Returns the adapter's view of a local secret with this id and an optional generate policy. */
export function localSecret(id: string, generate: SecretRef["generate"] = null): SecretRef {
  return { id, name: `test/${id}`, kind: "static", settings: {}, generate };
}

/** Returns a call context for adapter methods. The local adapter never calls `readLocalSecret`, so it rejects. */
export function adapterCall(secret: SecretRef): AdapterCall {
  return {
    secret,
    signal: new AbortController().signal,
    readLocalSecret: () => Promise.reject(new Error("readLocalSecret is not available in this test")),
  };
}

/** Seals a value as version 1 of a local secret and returns the stored version. */
export async function sealedVersion(adapter: LocalAdapter, secretId: string, value: SecretData): Promise<VersionRef> {
  const pending = await adapter.createPending(adapterCall(localSecret(secretId)), { rotationId: null, current: null, value });
  return { version: pending.version, sealedValue: pending.sealedValue };
}

/** Verifies an access token against the JWKS that `target` serves, at its clock; throws when it does not verify. */
export async function verifyWithJwks(target: TestBroker, token: string): Promise<void> {
  const jwks = (await target.request("GET", "/.well-known/jwks.json", { token: null })).json as JSONWebKeySet;
  await jwtVerify(token, createLocalJWKSet(jwks), {
    issuer: target.deps.config.issuer,
    currentDate: target.clock.now(),
    clockTolerance: target.deps.config.clockSkew,
  });
}

/** Seals in the v1 format the broker wrote before master key ids: `v1.<iv>.<tag>.<ciphertext>`. */
export function sealV1(key: Buffer, plaintext: Buffer, context: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(context, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return ["v1", iv.toString("base64url"), cipher.getAuthTag().toString("base64url"), ciphertext.toString("base64url")].join(".");
}
