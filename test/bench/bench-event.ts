import type { RequestContext } from "../../broker/audit/audit-types.js";

/** The content of one benchmark event, the same for the chained and the baseline side. */
export interface BenchEvent {
  action: string;
  target: string;
  details: Record<string, unknown>;
}

/** The actor and request that every benchmark event is recorded under. */
export const BENCH_CONTEXT: RequestContext = {
  actor: "bench",
  role: null,
  requestId: "bench-request",
  sourceAddress: "127.0.0.1",
};

/** Builds the `count`-th event of writer `writer`, with ids shaped like those of a lease issuance. */
export function benchEvent(writer: number, count: number): BenchEvent {
  return {
    action: "lease.issued",
    target: `lease_bench_${writer}_${count}`,
    details: { service_account_id: `sa_bench_${writer}`, secret: "bench/append", ttl: 3600 },
  };
}
