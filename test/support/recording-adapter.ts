import { randomBytes } from "node:crypto";
import type {
  AdapterCall,
  CreatePendingRequest,
  IssuedCredential,
  IssueRequest,
  PendingVersion,
  SecretAdapter,
  SecretKind,
  UpstreamLease,
  VersionRef,
} from "../../adapters/contract.js";
import { InvalidAdapterSettings, UpstreamRejected, UpstreamUnavailable } from "../../adapters/errors.js";

/** One call the recording adapter received. */
export interface RecordedCall {
  operation: string;
  secretId: string;
  upstreamLeaseId?: string;
  expiresAt?: string;
}

/**
 * A dynamic-credential adapter for tests of the broker's side of the contract: it
 * records every call, keeps the set of live upstream credentials, and has switches
 * that make a call fail or run a hook in the middle of `issue`.
 */
export class RecordingAdapter implements SecretAdapter {
  readonly name = "recording";
  readonly kinds: readonly SecretKind[] = ["dynamic"];
  readonly calls: RecordedCall[] = [];
  /** Upstream credentials issued and not yet revoked, by upstream lease id, with their expiry. */
  readonly live = new Map<string, Date>();
  /** Set to make the next calls of that operation fail with this error. */
  failRevoke: Error | undefined;
  failRenew: Error | undefined;
  failIssue: Error | undefined;
  /** Runs inside `issue` after the credential exists upstream, e.g. to revoke the grant meanwhile. */
  duringIssue: (() => Promise<void>) | undefined;

  parseSettings(kind: SecretKind, settings: unknown): Record<string, unknown> {
    const value = (settings ?? {}) as Record<string, unknown>;
    const unknown = Object.keys(value).filter((key) => key !== "label");
    if (unknown.length > 0) {
      throw new InvalidAdapterSettings(unknown.map((key) => ({ name: key, reason: "unknown setting; remove it" })));
    }
    return { kind, ...value };
  }

  async issue(call: AdapterCall, request: IssueRequest): Promise<IssuedCredential> {
    this.calls.push({ operation: "issue", secretId: call.secret.id, expiresAt: request.expiresAt.toISOString() });
    if (this.failIssue) throw this.failIssue;
    const upstreamLeaseId = `rec_${randomBytes(8).toString("hex")}`;
    this.live.set(upstreamLeaseId, request.expiresAt);
    await this.duringIssue?.();
    return { data: { username: upstreamLeaseId, password: randomBytes(16).toString("hex") }, version: null, upstreamLeaseId };
  }

  async renew(call: AdapterCall, lease: UpstreamLease, expiresAt: Date): Promise<void> {
    this.calls.push({ operation: "renew", secretId: call.secret.id, upstreamLeaseId: lease.upstreamLeaseId, expiresAt: expiresAt.toISOString() });
    if (this.failRenew) throw this.failRenew;
    if (!this.live.has(lease.upstreamLeaseId)) throw new UpstreamRejected(`credential ${lease.upstreamLeaseId} does not exist`);
    this.live.set(lease.upstreamLeaseId, expiresAt);
  }

  async revoke(call: AdapterCall, lease: UpstreamLease): Promise<void> {
    this.calls.push({ operation: "revoke", secretId: call.secret.id, upstreamLeaseId: lease.upstreamLeaseId });
    if (this.failRevoke) throw this.failRevoke;
    this.live.delete(lease.upstreamLeaseId);
  }

  async createPending(_call: AdapterCall, _request: CreatePendingRequest): Promise<PendingVersion> {
    throw new UpstreamRejected("the recording adapter serves dynamic secrets only");
  }

  async setPending(_call: AdapterCall, _pending: VersionRef): Promise<void> {}
  async testPending(_call: AdapterCall, _pending: VersionRef): Promise<void> {}
  async finishPending(_call: AdapterCall, _pending: VersionRef, _previous: VersionRef | null): Promise<void> {}
  async discardPending(_call: AdapterCall, _pending: VersionRef, _current: VersionRef | null): Promise<void> {}
  async close(): Promise<void> {}
}

/** Returns an error the recording adapter can throw to simulate an upstream that is down. */
export function upstreamDown(): UpstreamUnavailable {
  return new UpstreamUnavailable("recording upstream is unreachable");
}

/** The rotation steps an adapter runs, as the static recording adapter names them. */
export type RecordedStep = "createPending" | "setPending" | "testPending" | "finishPending" | "discardPending";

/**
 * A static-secret adapter for tests of the rotation engine: values live in memory by
 * version, `upstream` is the value the "upstream system" accepts now, every call is
 * recorded, and `fail` makes a step throw. `onStep` runs at the start of each step.
 */
export class RecordingStaticAdapter implements SecretAdapter {
  readonly name = "recording-static";
  readonly kinds: readonly SecretKind[] = ["static"];
  readonly calls: { step: RecordedStep | "issue"; version: string | null }[] = [];
  readonly fail: Partial<Record<RecordedStep, Error>> = {};
  onStep: ((step: RecordedStep) => void) | undefined;
  /** The value the upstream system accepts now, by secret id. */
  readonly upstream = new Map<string, string>();
  private readonly values = new Map<string, string>();

  parseSettings(): Record<string, unknown> {
    return {};
  }

  async issue(call: AdapterCall, request: IssueRequest): Promise<IssuedCredential> {
    this.calls.push({ step: "issue", version: request.current?.version ?? null });
    const value = request.current ? this.values.get(`${call.secret.id}@${request.current.version}`) : undefined;
    if (value === undefined) throw new UpstreamRejected(`no value for ${call.secret.id}`);
    return { data: { value }, version: request.current!.version, upstreamLeaseId: null };
  }

  async renew(): Promise<void> {}
  async revoke(): Promise<void> {}

  async createPending(call: AdapterCall, request: CreatePendingRequest): Promise<PendingVersion> {
    this.step("createPending", null);
    const version = request.current ? String(Number(request.current.version) + 1) : "1";
    const value = request.value?.["value"] ?? randomBytes(12).toString("hex");
    this.values.set(`${call.secret.id}@${version}`, value);
    if (!request.current) this.upstream.set(call.secret.id, value);
    return { version, sealedValue: null, data: { value } };
  }

  async setPending(call: AdapterCall, pending: VersionRef): Promise<void> {
    this.step("setPending", pending.version);
    this.upstream.set(call.secret.id, this.values.get(`${call.secret.id}@${pending.version}`)!);
  }

  async testPending(call: AdapterCall, pending: VersionRef): Promise<void> {
    this.step("testPending", pending.version);
    if (this.upstream.get(call.secret.id) !== this.values.get(`${call.secret.id}@${pending.version}`)) {
      throw new UpstreamRejected(`upstream does not accept version ${pending.version}`);
    }
  }

  async finishPending(_call: AdapterCall, pending: VersionRef): Promise<void> {
    this.step("finishPending", pending.version);
  }

  async discardPending(call: AdapterCall, pending: VersionRef, current: VersionRef | null): Promise<void> {
    this.step("discardPending", pending.version);
    if (current) this.upstream.set(call.secret.id, this.values.get(`${call.secret.id}@${current.version}`)!);
  }

  async close(): Promise<void> {}

  private step(step: RecordedStep, version: string | null): void {
    this.calls.push({ step, version });
    this.onStep?.(step);
    const error = this.fail[step];
    if (error) throw error;
  }
}
