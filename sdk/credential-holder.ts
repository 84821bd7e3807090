import type { CredentialResponse, RenewResponse } from "./broker-api.js";
import type { Clock } from "./clock.js";
import { BrokerProblemError, SecretsBrokerError } from "./errors.js";
import { backoffDelay, type RetryPolicy } from "./retry.js";
import type { DebugSink } from "./transport.js";

/** A leased credential: the secret's value as the broker handed it out, and its lease. */
export interface Credential {
  secret: string;
  leaseId: string;
  /** The value, e.g. `{ value }` or `{ username, password }`. */
  data: Readonly<Record<string, string>>;
  /** The secret version; null for a dynamic credential. */
  version: string | null;
  /** When the lease expires unless renewed, from the SDK's clock. */
  expiresAt: Date;
  renewable: boolean;
}

export type ChangeListener = (credential: Credential) => void;
export type ErrorListener = (error: unknown) => void;

/** The broker calls a holder makes; the client binds them to its transport and access tokens. */
export interface LeaseCalls {
  issue(secret: string, ttl: number | undefined): Promise<CredentialResponse>;
  renew(leaseId: string, increment: number): Promise<RenewResponse>;
  revoke(leaseId: string): Promise<void>;
}

export interface HolderSettings {
  clock: Clock;
  refreshRatio: number;
  serveStale: boolean;
  /** Seconds to ask for at issue and at each renewal; the secret's default TTL when undefined. */
  ttl: number | undefined;
  /** How long a superseded lease stays live, so that work still using it can finish. */
  retireGraceMs: number;
  /** Backoff of background refreshes that failed after the transport's own retries. */
  backgroundRetry: RetryPolicy;
  debug: DebugSink;
}

/**
 * Renewals come up to this fraction of the refresh point early, at random, so that
 * clients started together do not renew together for ever after.
 */
const RENEWAL_JITTER = 0.1;

interface Listener {
  onChange: ChangeListener;
  onError: ErrorListener | undefined;
  /** The lease last delivered, so that a listener never gets the same credential twice. */
  delivered: string | undefined;
}

interface Held {
  credential: Credential;
  /** Seconds asked for at each renewal: the TTL option, or the duration granted at issue. */
  increment: number;
  refreshAt: number;
  expiresAt: number;
}

/**
 * Holds one secret's credential for as long as the application uses it. It renews the
 * lease at `refreshRatio` of each granted duration (up to 10% earlier, at random). It
 * issues a new credential when renewal is refused, the max TTL is reached or the secret
 * was rotated, and calls watchers with each new value. A credential is never returned at
 * or after its expiry.
 */
export class CredentialHolder {
  private held: Held | undefined;
  private inflight: Promise<Credential> | undefined;
  private cancelTimer: (() => void) | undefined;
  private readonly retiring = new Map<string, () => void>();
  private readonly listeners = new Set<Listener>();
  private failures = 0;
  private stopped = false;

  constructor(
    readonly secret: string,
    private readonly calls: LeaseCalls,
    private readonly settings: HolderSettings,
  ) {}

  get(): Promise<Credential> {
    const held = this.held;
    if (held !== undefined && this.settings.clock.now() < held.refreshAt) {
      return Promise.resolve(held.credential);
    }
    return this.refreshShared();
  }

  /** Calls `onChange` with the current credential once it is known, then with every new one. */
  watch(onChange: ChangeListener, onError: ErrorListener | undefined): () => void {
    const listener: Listener = { onChange, onError, delivered: undefined };
    this.listeners.add(listener);
    this.get().then(
      (credential) => this.listeners.has(listener) && deliver(listener, credential),
      (error: unknown) => {
        onError?.(error);
        this.scheduleRetry();
      },
    );
    return () => this.listeners.delete(listener);
  }

  /** Drops the current credential (the application found it rejected) so that the next get issues a new one. */
  invalidate(): void {
    if (this.held !== undefined) {
      this.retire(this.held.credential, 0);
      this.held = undefined;
    }
  }

  /** Waits until a refresh in flight has ended, whatever its outcome. */
  async settle(): Promise<void> {
    await this.inflight?.catch(() => undefined);
  }

  /** Stops renewing and returns the leases the holder still has, for the client to revoke. */
  stop(): string[] {
    this.stopped = true;
    this.cancelTimer?.();
    this.listeners.clear();
    const leaseIds = [...this.retiring.keys()];
    for (const cancel of this.retiring.values()) cancel();
    this.retiring.clear();
    if (this.held !== undefined && this.settings.clock.now() < this.held.expiresAt) {
      leaseIds.push(this.held.credential.leaseId);
    }
    this.held = undefined;
    return leaseIds;
  }

  private async refreshShared(): Promise<Credential> {
    const stale = this.held;
    this.inflight ??= this.refresh().finally(() => (this.inflight = undefined));
    try {
      return await this.inflight;
    } catch (error) {
      const retryable = error instanceof SecretsBrokerError && error.retryable;
      if (this.settings.serveStale && retryable && stale !== undefined && this.settings.clock.now() < stale.expiresAt) {
        this.settings.debug("credential.stale", { secret: this.secret, lease_id: stale.credential.leaseId });
        return stale.credential;
      }
      throw error;
    }
  }

  /** Renews the current lease when it can, else issues a new credential. */
  private async refresh(): Promise<Credential> {
    const held = this.held;
    if (held !== undefined && held.credential.renewable && this.settings.clock.now() < held.expiresAt) {
      const renewed = await this.renew(held);
      if (renewed !== undefined) return renewed;
    }
    return this.issue(held);
  }

  /** Returns the renewed credential, or undefined when a new one is needed (refused, or rotated). */
  private async renew(held: Held): Promise<Credential | undefined> {
    const leaseId = held.credential.leaseId;
    const requestedAt = this.settings.clock.now();
    let answer: RenewResponse;
    try {
      answer = await this.calls.renew(leaseId, held.increment);
    } catch (error) {
      if (error instanceof BrokerProblemError && !error.retryable) {
        this.settings.debug("credential.renew_refused", { secret: this.secret, lease_id: leaseId, status: error.status, code: error.problemCode });
        return undefined;
      }
      throw error;
    }
    if (answer.currentVersion !== null && answer.currentVersion !== answer.version) {
      this.settings.debug("credential.rotated", { secret: this.secret, lease_id: leaseId, version: answer.version, current_version: answer.currentVersion });
      return undefined;
    }
    const credential = { ...held.credential, expiresAt: new Date(requestedAt + answer.leaseDuration * 1000), renewable: answer.renewable };
    this.settings.debug("credential.renewed", { secret: this.secret, lease_id: leaseId, lease_duration: answer.leaseDuration });
    this.keep(credential, requestedAt, answer.leaseDuration, held.increment);
    return credential;
  }

  private async issue(previous: Held | undefined): Promise<Credential> {
    const requestedAt = this.settings.clock.now();
    const answer = await this.calls.issue(this.secret, this.settings.ttl);
    const credential: Credential = {
      secret: this.secret,
      leaseId: answer.leaseId,
      data: Object.freeze({ ...answer.data }),
      version: answer.version,
      expiresAt: new Date(requestedAt + answer.leaseDuration * 1000),
      renewable: answer.renewable,
    };
    this.settings.debug("credential.issued", { secret: this.secret, lease_id: credential.leaseId, version: credential.version, lease_duration: answer.leaseDuration });
    if (this.stopped) {
      // Closed while the request was in flight: give the lease back at once.
      await this.calls.revoke(credential.leaseId).catch(() => undefined);
      return credential;
    }
    this.keep(credential, requestedAt, answer.leaseDuration, this.settings.ttl ?? answer.leaseDuration);
    if (previous !== undefined) {
      this.retire(previous.credential, this.settings.retireGraceMs);
    }
    if (previous === undefined || changed(previous.credential, credential)) {
      this.notify(credential);
    }
    return credential;
  }

  /** Makes `credential` current and schedules its next refresh. */
  private keep(credential: Credential, requestedAt: number, leaseDuration: number, increment: number): void {
    const durationMs = leaseDuration * 1000;
    const refreshAfterMs = durationMs * this.settings.refreshRatio * (1 - RENEWAL_JITTER * Math.random());
    this.held = { credential, increment, refreshAt: requestedAt + refreshAfterMs, expiresAt: requestedAt + durationMs };
    this.failures = 0;
    this.schedule(this.held.refreshAt - this.settings.clock.now());
  }

  private schedule(delayMs: number): void {
    this.cancelTimer?.();
    if (this.stopped) return;
    this.cancelTimer = this.settings.clock.schedule(() => this.backgroundRefresh(), delayMs);
  }

  private backgroundRefresh(): void {
    this.refreshShared().catch((error: unknown) => {
      this.settings.debug("credential.refresh_failed", { secret: this.secret, error: error instanceof SecretsBrokerError ? error.code : "error" });
      for (const listener of this.listeners) listener.onError?.(error);
      this.scheduleRetry();
    });
  }

  /** After a failed background refresh: drop an expired credential and try again with backoff. */
  private scheduleRetry(): void {
    if (this.held !== undefined && this.settings.clock.now() >= this.held.expiresAt) {
      this.held = undefined;
    }
    this.failures += 1;
    let delayMs = backoffDelay(this.settings.backgroundRetry, this.failures);
    if (this.held !== undefined) {
      delayMs = Math.min(delayMs, this.held.expiresAt - this.settings.clock.now());
    }
    this.schedule(delayMs);
  }

  /** Revokes a superseded lease after `graceMs`, or at stop, whichever comes first. */
  private retire(credential: Credential, graceMs: number): void {
    const leaseId = credential.leaseId;
    const remainingMs = credential.expiresAt.getTime() - this.settings.clock.now();
    if (remainingMs <= 0) return;
    const revokeNow = () => {
      this.retiring.delete(leaseId);
      this.calls.revoke(leaseId).catch(() => this.settings.debug("credential.revoke_failed", { secret: this.secret, lease_id: leaseId }));
    };
    this.retiring.set(leaseId, this.settings.clock.schedule(revokeNow, Math.min(graceMs, remainingMs)));
  }

  private notify(credential: Credential): void {
    for (const listener of this.listeners) {
      deliver(listener, credential);
    }
  }
}

function deliver(listener: Listener, credential: Credential): void {
  if (listener.delivered === credential.leaseId) return;
  listener.delivered = credential.leaseId;
  try {
    listener.onChange(credential);
  } catch (error) {
    listener.onError?.(error);
  }
}

/** A new lease matters to watchers when the value or the version differs. */
function changed(before: Credential, after: Credential): boolean {
  if (before.version !== after.version) return true;
  const keys = Object.keys(after.data);
  return keys.length !== Object.keys(before.data).length || keys.some((key) => before.data[key] !== after.data[key]);
}
