import type {
  AdapterCall,
  CreatePendingRequest,
  IssuedCredential,
  IssueRequest,
  PendingVersion,
  SecretAdapter,
  SecretData,
  SecretKind,
  SecretRef,
  UpstreamLease,
  VersionRef,
} from "../contract.js";
import { InvalidAdapterSettings, UpstreamNotFound, UpstreamRejected, UpstreamUnavailable } from "../errors.js";
import { generatePolicyProblems, generateValue } from "./generate-value.js";
import { SealedValueRejected, type ValueSealer } from "./value-sealer.js";

/** Version ids of the local adapter: a counter from 1. */
const VERSION_PATTERN = /^[1-9][0-9]*$/;
const FIRST_VERSION = "1";

export interface LocalAdapterOptions {
  sealer: ValueSealer;
}

/**
 * Static secrets kept by the broker itself: each version's value is sealed with
 * AES-256-GCM under a data key and stored by the broker as `sealedValue`. The sealing
 * context names the secret id and the version, so a value copied to another secret or
 * version fails to open. There is no upstream system, so the rotation steps other than
 * `createPending` and `testPending`, and `renew` and `revoke`, have nothing to do.
 */
export class LocalAdapter implements SecretAdapter {
  readonly name = "local";
  readonly kinds: readonly SecretKind[] = ["static"];
  private readonly sealer: ValueSealer;

  constructor(options: LocalAdapterOptions) {
    this.sealer = options.sealer;
  }

  /** Accepts kind `static` and no settings: `{}` or absent. */
  parseSettings(kind: SecretKind, settings: unknown): Record<string, unknown> {
    if (kind !== "static") {
      throw new InvalidAdapterSettings([{ name: "kind", reason: `the local adapter keeps static secrets only, not ${String(kind)}` }]);
    }
    if (settings === undefined) {
      return {};
    }
    if (typeof settings !== "object" || settings === null || Array.isArray(settings)) {
      throw new InvalidAdapterSettings([{ name: "settings", reason: "must be an object; the local adapter takes no settings, so send {} or leave it out" }]);
    }
    const unknown = Object.keys(settings);
    if (unknown.length > 0) {
      throw new InvalidAdapterSettings(unknown.map((name) => ({ name, reason: "unknown setting; the local adapter takes no settings" })));
    }
    return {};
  }

  async issue(call: AdapterCall, request: IssueRequest): Promise<IssuedCredential> {
    const { current } = request;
    if (!current) {
      throw new UpstreamNotFound(`secret ${call.secret.id} has no current version; create one with a value or a generate policy`);
    }
    const data = await this.openValue(call.secret, current);
    return { data, version: current.version, upstreamLeaseId: null };
  }

  /** Static values have no upstream lease to extend. */
  async renew(_call: AdapterCall, _lease: UpstreamLease, _expiresAt: Date): Promise<void> {}

  /** Static values have no upstream credential to end; rotation replaces them. */
  async revoke(_call: AdapterCall, _lease: UpstreamLease): Promise<void> {}

  /**
   * Seals the next version: `request.value`, or a value generated from the secret's policy
   * into its `field`. The broker stores the result. A retry with the same rotation id
   * makes a new ciphertext for the same version number, so the broker keeps one of them.
   */
  async createPending(call: AdapterCall, request: CreatePendingRequest): Promise<PendingVersion> {
    const { secret } = call;
    const data = request.value === undefined ? generatedData(secret) : checkedValue(secret, request.value);
    const version = nextVersion(secret, request.current);
    const sealedValue = await this.sealer.seal(Buffer.from(JSON.stringify(data), "utf8"), valueContext(secret.id, version));
    return { version, sealedValue, data };
  }

  /** The broker stores the value; there is no upstream to change. */
  async setPending(_call: AdapterCall, _pending: VersionRef): Promise<void> {}

  /** Proves that the stored pending value opens under its own secret id and version and contains string fields. */
  async testPending(call: AdapterCall, pending: VersionRef): Promise<void> {
    await this.openValue(call.secret, pending);
  }

  async finishPending(_call: AdapterCall, _pending: VersionRef, _previous: VersionRef | null): Promise<void> {}

  async discardPending(_call: AdapterCall, _pending: VersionRef, _current: VersionRef | null): Promise<void> {}

  async close(): Promise<void> {}

  private async openValue(secret: SecretRef, version: VersionRef): Promise<SecretData> {
    if (version.sealedValue === null) {
      throw new UpstreamNotFound(`secret ${secret.id} version ${version.version} has no stored value`);
    }

    let plaintext: Buffer;
    try {
      plaintext = await this.sealer.open(version.sealedValue, valueContext(secret.id, version.version));
    } catch (error) {
      if (error instanceof SealedValueRejected) {
        throw new UpstreamRejected(
          `stored value of secret ${secret.id} version ${version.version} failed its integrity check; ` +
            "it was altered or copied from another secret or version, so rotate the secret with a new value",
          { cause: error },
        );
      }
      throw new UpstreamUnavailable(
        `cannot open the stored value of secret ${secret.id} version ${version.version}: the broker's data keys are unavailable`,
        { cause: error },
      );
    }

    const data = parseSecretData(plaintext.toString("utf8"));
    if (!data) {
      throw new UpstreamRejected(`stored value of secret ${secret.id} version ${version.version} is not a JSON object of string fields`);
    }
    return data;
  }
}

/** Returns the sealing context of a value: its secret id and version, bound as AAD. */
export function valueContext(secretId: string, version: string): string {
  return `secret:${secretId}:version:${version}`;
}

function nextVersion(secret: SecretRef, current: VersionRef | null): string {
  if (!current) {
    return FIRST_VERSION;
  }
  if (!VERSION_PATTERN.test(current.version)) {
    throw new UpstreamRejected(`current version '${current.version}' of secret ${secret.id} is not a local adapter version counter`);
  }
  return String(Number(current.version) + 1);
}

function generatedData(secret: SecretRef): SecretData {
  if (!secret.generate) {
    throw new UpstreamRejected(
      `secret ${secret.id} has no generate policy and no value was given: send \`value\` with the fields, or give the secret a \`generate\` policy such as {"length": 32}`,
    );
  }
  const problems = generatePolicyProblems(secret.generate);
  if (problems.length > 0) {
    throw new UpstreamRejected(`generate policy of secret ${secret.id} is invalid: ${problems.map((problem) => `${problem.name} ${problem.reason}`).join("; ")}`);
  }
  return { [secret.generate.field]: generateValue(secret.generate) };
}

/** Checks an operator-supplied value: an object with at least one field, every field a string. Messages name fields, never values. */
function checkedValue(secret: SecretRef, value: unknown): SecretData {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UpstreamRejected(`value of secret ${secret.id} must be an object of string fields, such as {"password": "..."}`);
  }
  const entries = Object.entries(value);
  if (entries.length === 0) {
    throw new UpstreamRejected(`value of secret ${secret.id} must have at least one field`);
  }
  const nonString = entries.filter(([, field]) => typeof field !== "string").map(([name]) => name);
  if (nonString.length > 0) {
    throw new UpstreamRejected(`value of secret ${secret.id} must have string fields only; ${nonString.join(", ")} ${nonString.length === 1 ? "is" : "are"} not`);
  }
  return Object.fromEntries(entries) as SecretData;
}

function parseSecretData(text: string): SecretData | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return undefined;
  }
  return Object.values(parsed).every((field) => typeof field === "string") ? (parsed as SecretData) : undefined;
}
