import type { AdapterCall, SecretAdapter, SecretData, SecretRef } from "../../adapters/contract.js";
import { AdapterError, InvalidAdapterSettings, InvalidSecretValue, UpstreamTimeout } from "../../adapters/errors.js";
import { UpstreamFailed, ValidationFailed } from "../errors.js";
import { type Logger, loggableError } from "../logging/logger.js";
import type { BrokerMetrics } from "../metrics/metrics.js";

/** Reads the current value of a local secret by name, for settings that refer to one. */
export type LocalSecretReader = (name: string) => Promise<SecretData>;

/** Adapter operations, as named in logs and metrics. */
export type AdapterOperation =
  | "issue"
  | "renew"
  | "revoke"
  | "revoke_all"
  | "create_pending"
  | "set_pending"
  | "test_pending"
  | "finish_pending"
  | "retire_version"
  | "discard_pending"
  | "describe_rotation"
  | "resolve_settings"
  | "verify_upstream"
  | "read_latest";

/**
 * The adapters this broker runs with, by name. Every call goes through `call`, which
 * applies the timeout, measures the call and turns adapter errors into broker errors.
 */
export class AdapterRegistry {
  private readonly adapters = new Map<string, SecretAdapter>();

  constructor(
    adapters: SecretAdapter[],
    private readonly options: { timeoutMs: number; log: Logger; metrics: BrokerMetrics },
  ) {
    for (const adapter of adapters) {
      this.adapters.set(adapter.name, adapter);
    }
  }

  names(): string[] {
    return [...this.adapters.keys()].sort();
  }

  has(name: string): boolean {
    return this.adapters.has(name);
  }

  get(name: string): SecretAdapter {
    const adapter = this.adapters.get(name);
    if (!adapter) {
      throw new ValidationFailed([{ name: "adapter", reason: `must be one of: ${this.names().join(", ")}` }]);
    }
    return adapter;
  }

  /** Validates settings with the adapter; bad settings become a 400 naming `settings.<field>`. */
  parseSettings(name: string, kind: SecretRef["kind"], settings: unknown): Record<string, unknown> {
    const adapter = this.get(name);
    if (!adapter.kinds.includes(kind)) {
      throw new ValidationFailed([{ name: "kind", reason: `adapter ${name} serves ${adapter.kinds.join(" and ")} secrets, not ${kind}` }]);
    }
    try {
      return adapter.parseSettings(kind, settings ?? {});
    } catch (error) {
      if (error instanceof InvalidAdapterSettings) {
        throw new ValidationFailed(
          error.invalidSettings.map((entry) => ({ name: entry.name === "kind" ? "kind" : `settings.${entry.name}`, reason: entry.reason })),
        );
      }
      throw error;
    }
  }

  /**
   * Runs one adapter operation for `secret` with a timeout. An `AdapterError` becomes an
   * `UpstreamFailed` with the same code; the call is abandoned when the timeout fires,
   * whether or not the adapter honours its signal.
   */
  async call<T>(
    adapterName: string,
    secret: SecretRef,
    operation: AdapterOperation,
    readLocalSecret: LocalSecretReader,
    work: (adapter: SecretAdapter, call: AdapterCall) => Promise<T>,
  ): Promise<T> {
    const adapter = this.get(adapterName);
    const controller = new AbortController();
    const timedOut = new Promise<never>((_resolve, reject) => {
      controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true });
    });
    const timer = setTimeout(
      () => controller.abort(new UpstreamTimeout(`adapter ${adapterName} did not finish ${operation} for secret ${secret.name} within ${this.options.timeoutMs} ms`)),
      this.options.timeoutMs,
    );
    const started = performance.now();
    let outcome = "success";
    const call: AdapterCall = { secret, signal: controller.signal, readLocalSecret };
    const working = work(adapter, call);
    if (operation === "issue") {
      this.revokeIfLate(adapterName, secret, working as Promise<unknown>, controller.signal, readLocalSecret);
    }
    try {
      return await Promise.race([working, timedOut]);
    } catch (error) {
      outcome = error instanceof AdapterError ? error.code : "error";
      throw toBrokerError(error);
    } finally {
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      this.options.metrics.adapterCalls.inc({ adapter: adapterName, operation, outcome });
      this.options.metrics.adapterDuration.observe({ adapter: adapterName, operation }, seconds);
      this.options.log.debug({ adapter: adapterName, operation, secretId: secret.id, outcome, durationMs: Math.round(seconds * 1000) }, "adapter call finished");
    }
  }

  /**
   * Revokes upstream a credential whose issue finished after its timeout: no lease
   * records it, because the caller already got an error.
   */
  private revokeIfLate(adapterName: string, secret: SecretRef, working: Promise<unknown>, signal: AbortSignal, readLocalSecret: LocalSecretReader): void {
    working.then(
      async (issued) => {
        const upstreamLeaseId = (issued as { upstreamLeaseId?: string | null }).upstreamLeaseId;
        if (!signal.aborted || !upstreamLeaseId) {
          return;
        }
        const log = this.options.log.child({ adapter: adapterName, secretId: secret.id, upstreamLeaseId });
        try {
          await this.call(adapterName, secret, "revoke", readLocalSecret, (adapter, call) => adapter.revoke(call, { upstreamLeaseId }));
          log.warn("a credential issued after its timeout was revoked upstream");
        } catch (error) {
          log.error({ err: loggableError(error) }, "a credential issued after its timeout could not be revoked upstream; revoke it by hand");
        }
      },
      () => undefined,
    );
  }

  async close(): Promise<void> {
    for (const adapter of this.adapters.values()) {
      await adapter.close().catch((error: unknown) => this.options.log.warn({ adapter: adapter.name, err: loggableError(error) }, "adapter failed to close"));
    }
  }
}

function toBrokerError(error: unknown): unknown {
  if (error instanceof InvalidAdapterSettings) {
    return new ValidationFailed(error.invalidSettings.map((entry) => ({ name: `settings.${entry.name}`, reason: entry.reason })));
  }
  if (error instanceof InvalidSecretValue) {
    return new ValidationFailed([{ name: error.field === null ? "value" : `value.${error.field}`, reason: error.message }]);
  }
  if (error instanceof AdapterError) {
    const code = error.code === "invalid_settings" || error.code === "invalid_value" ? "upstream_rejected" : error.code;
    return new UpstreamFailed(code, error.message, error.retryable, { cause: error });
  }
  return error;
}
