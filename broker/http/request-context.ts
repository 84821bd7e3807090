import { getConnInfo } from "@hono/node-server/conninfo";
import type { Context } from "hono";
import type { RequestContext } from "../audit/audit-types.js";
import type { Operator } from "../auth/operator-tokens.js";
import type { LeaseRow } from "../leases/lease-types.js";

/** Values that middleware stores on each request. */
export type AppEnv = {
  Variables: {
    requestId: string;
    operator: Operator;
    workload: Workload;
  };
};

/** A workload authenticated by a live access token the broker issued to it. */
export interface Workload {
  serviceAccountId: string;
  leaseId: string;
  /** The access token's lease as read when the token was checked; unset for a client authenticated by assertion. */
  lease?: LeaseRow;
}

/** The caller's address, or null when the request did not come over a socket (in-process tests). */
export function sourceAddress(c: Context): string | null {
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null;
  }
}

/** Audit context for the current request: the authenticated operator if any, else anonymous. */
export function requestContext(c: Context<AppEnv>): RequestContext {
  const operator = c.get("operator") as Operator | undefined;
  const workload = c.get("workload") as Workload | undefined;
  return {
    actor: operator ? `operator:${operator.tokenId}` : workload ? `service_account:${workload.serviceAccountId}` : "anonymous",
    role: operator?.role ?? null,
    requestId: c.get("requestId") ?? null,
    sourceAddress: sourceAddress(c),
  };
}
