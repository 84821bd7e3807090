import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Prometheus metrics of one broker process; each app gets its own registry so tests can build many. */
export interface BrokerMetrics {
  registry: Registry;
  httpRequests: Counter<"method" | "route" | "status">;
  httpDuration: Histogram<"method" | "route">;
  auditEvents: Counter;
  authFailures: Counter<"reason">;
  leasesExpired: Counter;
  /** Live leases in the whole database, refreshed by every expiry sweep tick on every replica. */
  liveLeases: Gauge;
  adapterCalls: Counter<"adapter" | "operation" | "outcome">;
  adapterDuration: Histogram<"adapter" | "operation">;
  upstreamRevocations: Counter<"adapter" | "outcome">;
  /** Leases whose upstream credential could not be revoked yet, in the whole database, as of the last retry tick. */
  revokeFailedLeases: Gauge;
  rotations: Counter<"trigger" | "outcome">;
  /** Lifecycle of the broker's own Vault tokens: login, login_failed, lookup, renew, renew_refused, expired. */
  vaultTokenEvents: Counter<"event">;
}

export function createMetrics(options: { processMetrics: boolean }): BrokerMetrics {
  const registry = new Registry();
  if (options.processMetrics) {
    collectDefaultMetrics({ register: registry });
  }
  return {
    registry,
    httpRequests: new Counter({
      name: "broker_http_requests_total",
      help: "HTTP requests served, by method, route pattern and status code.",
      labelNames: ["method", "route", "status"],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "broker_http_request_duration_seconds",
      help: "Time to serve an HTTP request, in seconds, by method and route pattern.",
      labelNames: ["method", "route"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    auditEvents: new Counter({
      name: "broker_audit_events_total",
      help: "Audit events appended to the hash chain.",
      registers: [registry],
    }),
    authFailures: new Counter({
      name: "broker_authentication_failures_total",
      help: "Refused operator authentications, by reason.",
      labelNames: ["reason"],
      registers: [registry],
    }),
    leasesExpired: new Counter({
      name: "broker_leases_expired_total",
      help: "Leases marked expired by the expiry sweep of this process.",
      registers: [registry],
    }),
    liveLeases: new Gauge({
      name: "broker_leases_live",
      help: "Leases neither revoked nor past their expiry, in the whole database, as of the last expiry sweep tick.",
      registers: [registry],
    }),
    adapterCalls: new Counter({
      name: "broker_adapter_calls_total",
      help: "Adapter calls, by adapter, operation and outcome (success or an error code).",
      labelNames: ["adapter", "operation", "outcome"],
      registers: [registry],
    }),
    adapterDuration: new Histogram({
      name: "broker_adapter_call_duration_seconds",
      help: "Time an adapter call took, in seconds, by adapter and operation.",
      labelNames: ["adapter", "operation"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    upstreamRevocations: new Counter({
      name: "broker_upstream_revocations_total",
      help: "Attempts to revoke an upstream credential, by adapter and outcome.",
      labelNames: ["adapter", "outcome"],
      registers: [registry],
    }),
    rotations: new Counter({
      name: "broker_rotations_total",
      help: "Rotations that ended in this process, by trigger (schedule, manual, compromise) and outcome (completed, rolled_back).",
      labelNames: ["trigger", "outcome"],
      registers: [registry],
    }),
    vaultTokenEvents: new Counter({
      name: "broker_vault_token_events_total",
      help: "Lifecycle events of the broker's own Vault tokens, by event (login, login_failed, lookup, renew, renew_refused, expired).",
      labelNames: ["event"],
      registers: [registry],
    }),
    revokeFailedLeases: new Gauge({
      name: "broker_leases_revoke_failed",
      help: "Ended leases whose upstream credential is still not revoked after a failed attempt, as of the last retry tick.",
      registers: [registry],
    }),
  };
}
