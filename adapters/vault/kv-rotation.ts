import type { Logger } from "pino";
import type { AdapterCall, CreatePendingRequest, PendingVersion, SecretData, SecretRef, VersionRef } from "../contract.js";
import { UpstreamConflict, UpstreamRejected } from "../errors.js";
import { generatePolicyProblems, generateValue, type RandomBytes, seededRandomBytes } from "../local/generate-value.js";
import type { ValueSealer } from "../local/value-sealer.js";
import { deleteKvVersion, KvCasMismatch, type KvVersion, readKvCurrentVersion, readKvVersion, writeKvVersion } from "./kv-store.js";
import { matchesCopy, requireSameAsCopy, sameValue, sealCopy } from "./sealed-copy.js";
import { VaultVersionDeleted } from "./vault-errors.js";
import type { PreparedVaultCall } from "./vault-sessions.js";
import type { VaultStaticSettings } from "./vault-settings.js";

type KvCall = PreparedVaultCall<VaultStaticSettings>;

/** Derives the seed of a rotation's generated value from `info`, with a broker key; the same info gives the same seed. */
export type DeriveSeed = (info: string) => Promise<Buffer>;

/**
 * Rotation of a KV v2 secret. createPending writes the new value as a new Vault version
 * with check-and-set on the current one, so a concurrent writer is never overwritten.
 * testPending reads that version back and compares it with the broker's sealed copy.
 * discardPending writes the previous value again as a newer version.
 */
export class KvRotation {
  constructor(
    private readonly sealer: ValueSealer,
    private readonly logger: Pick<Logger, "info" | "warn"> | undefined,
    private readonly deriveSeed: DeriveSeed | undefined,
  ) {}

  /**
   * Writes the pending value: `request.value`, or the latest value with the generate
   * policy's field replaced by a generated value. Without a current version in the
   * broker, the check-and-set is on Vault's latest version (0 for a new key). A secret's
   * first version without a value is Vault's latest version, recorded without a write.
   */
  async createPending(call: AdapterCall, kv: KvCall, request: CreatePendingRequest): Promise<PendingVersion> {
    const { secret } = call;
    if (request.current === null && request.value === undefined) {
      return this.readLatest(call, kv);
    }

    const cas = request.current ? Number(request.current.version) : await readKvCurrentVersion(kv);
    if (!Number.isInteger(cas) || cas < 0) {
      throw new UpstreamRejected(`current version '${request.current?.version}' of secret ${secret.name} is not a Vault KV version number`);
    }

    const data = request.value ?? (await this.generatedData(kv, secret, cas, request.rotationId));
    const version = await this.writePending(call, kv, data, cas, request.current);
    return { version, sealedValue: await sealCopy(this.sealer, secret, version, data), data };
  }

  /**
   * Writes the pending value with check-and-set on `cas`. After a mismatch it reads
   * Vault's latest version. If it contains this very value, an earlier attempt of the same
   * rotation wrote it and lost the reply, so that version is adopted instead of a second
   * one. If it contains the broker's current value again (a rollback restored it as a newer
   * version), the write is repeated on it, since it overwrites nothing new. Any other
   * latest version is someone else's write, and the conflict is raised.
   */
  private async writePending(call: AdapterCall, kv: KvCall, data: SecretData, cas: number, current: VersionRef | null): Promise<string> {
    const { secret } = call;
    const recovery = current === null ? "Create the secret again to start from Vault's latest version." : resyncRecovery(secret.name);
    try {
      return await writeKvVersion(kv, secret.name, data, cas, recovery);
    } catch (error) {
      if (!(error instanceof KvCasMismatch)) {
        throw error;
      }
      const latest = await this.latestOrUndefined(kv, secret.name);
      if (latest && sameValue(latest.data, data)) {
        this.logger?.info({ secretId: secret.id, version: latest.version }, "adopted the Vault version an earlier attempt of this rotation wrote");
        return latest.version;
      }
      if (latest && current !== null && (await matchesCopy(this.sealer, secret, current, latest.data))) {
        this.logger?.info({ secretId: secret.id, currentVersion: current.version, latestVersion: latest.version }, "Vault's latest version holds the current value again; writing on it");
        return writeKvVersion(kv, secret.name, data, Number(latest.version), recovery);
      }
      throw error;
    }
  }

  /** Reads the latest version, or undefined when it is deleted or destroyed. */
  private async latestOrUndefined(kv: KvCall, secretName: string): Promise<KvVersion | undefined> {
    try {
      return await readKvVersion(kv, secretName);
    } catch (error) {
      if (error instanceof VaultVersionDeleted) {
        return undefined;
      }
      throw error;
    }
  }

  /** Reads Vault's latest version, with a sealed copy for the broker to keep. */
  async readLatest(call: AdapterCall, kv: KvCall): Promise<PendingVersion> {
    const latest = await readKvVersion(kv, call.secret.name);
    return { ...latest, sealedValue: await sealCopy(this.sealer, call.secret, latest.version, latest.data) };
  }

  /** Reads the pending version back; it must exist, be live and equal what the broker wrote. */
  async testPending(call: AdapterCall, kv: KvCall, pending: VersionRef): Promise<void> {
    const read = await readKvVersion(kv, call.secret.name, pending.version);
    await requireSameAsCopy(this.sealer, call.secret, pending, read.data, kv.location);
  }

  /**
   * Restores the previous value by writing it again as a new version, with check-and-set
   * on the pending version, so that a write made after the rotation's is not undone.
   * Without a current version, the pending version is soft-deleted instead.
   */
  async discardPending(call: AdapterCall, kv: KvCall, pending: VersionRef, current: VersionRef | null): Promise<void> {
    const { secret } = call;
    const latest = await readKvCurrentVersion(kv);
    if (String(latest) !== pending.version) {
      throw new UpstreamConflict(
        `${kv.location} (secret ${secret.name}) is at version ${latest}, not the pending version ${pending.version}; ` +
          "someone wrote after the rotation, so the previous value was not restored",
      );
    }
    if (current === null) {
      await deleteKvVersion(kv, pending.version);
      return;
    }
    const previous = await readKvVersion(kv, secret.name, current.version);
    const restored = await writeKvVersion(kv, secret.name, previous.data, latest, "The previous value was not restored; check who changed it.");
    this.logger?.warn({ secretId: secret.id, pendingVersion: pending.version, currentVersion: current.version, restoredVersion: restored }, "restored the previous value in Vault as a new version");
  }

  /**
   * Returns the latest data with the policy's field replaced by a generated value. The
   * field must already be in the Vault secret when it has fields: a generated value in a
   * new field would leave the credential the application uses unchanged.
   */
  private async generatedData(kv: KvCall, secret: SecretRef, cas: number, rotationId: string | null): Promise<SecretData> {
    const generated = generatedField(secret, await this.valueBytes(secret.id, rotationId, cas));
    const latest = await this.latestData(kv, secret.name, cas);
    const fields = Object.keys(latest);
    const field = secret.generate!.field;
    if (fields.length > 0 && !fields.includes(field)) {
      throw new UpstreamRejected(
        `generate.field '${field}' of secret ${secret.name} is not a field of its Vault secret, whose fields are ${fields.join(", ")}; set generate.field to the field that holds the credential (PATCH /v1/secrets/${secret.id})`,
      );
    }
    return { ...latest, ...generated };
  }

  /**
   * Returns the byte source of a rotation's generated value, seeded by the secret, the
   * rotation and `cas`, so that a retried create step generates the value its first
   * attempt wrote. Without a rotation id or a seed the value is random.
   */
  private async valueBytes(secretId: string, rotationId: string | null, cas: number): Promise<RandomBytes | undefined> {
    if (rotationId === null || this.deriveSeed === undefined) {
      return undefined;
    }
    return seededRandomBytes(await this.deriveSeed(`vault-kv-rotation:${secretId}:${rotationId}:${cas}`));
  }

  /** Returns the data of version `cas`, so that a generated field replaces one field and keeps the others; {} for a new or deleted key. */
  private async latestData(kv: KvCall, secretName: string, cas: number): Promise<SecretData> {
    if (cas === 0) {
      return {};
    }
    try {
      return (await readKvVersion(kv, secretName, String(cas))).data;
    } catch (error) {
      if (error instanceof VaultVersionDeleted) {
        return {};
      }
      throw error;
    }
  }
}

/** Tells the operator how to bring the broker back in step after a write outside it. */
function resyncRecovery(secretName: string): string {
  return `Check who changed it, then record Vault's latest version as current with \`secrets-broker secret resync ${secretName}\` (POST /v1/secrets/{id}/resync) and rotate again.`;
}

function generatedField(secret: SecretRef, bytes: RandomBytes | undefined): SecretData {
  const policy = secret.generate;
  if (!policy) {
    throw new UpstreamRejected(
      `secret ${secret.name} has no generate policy, so a rotation cannot make a new value; set one that names the field holding the credential with ` +
        `PATCH /v1/secrets/${secret.id} {"generate": {"length": 32, "field": "password"}}`,
    );
  }
  const problems = generatePolicyProblems(policy);
  if (problems.length > 0) {
    throw new UpstreamRejected(`generate policy of secret ${secret.name} is invalid: ${problems.map((problem) => `${problem.name} ${problem.reason}`).join("; ")}`);
  }
  return { [policy.field]: generateValue(policy, bytes) };
}
