/** Who performed a request, and from where, as recorded in audit events. */
export interface RequestContext {
  /** `operator:<token id>`, `system`, `cli`, or `anonymous` for unauthenticated callers. */
  actor: string;
  role?: string | null;
  requestId: string | null;
  sourceAddress: string | null;
}

export type AuditOutcome = "success" | "denied" | "failure";

/** One audit event before the chain assigns its sequence number and hashes. */
export interface AuditEntry {
  action: string;
  target?: string | null;
  outcome?: AuditOutcome;
  /** Ids and non-secret facts only; never a token, key or secret value. */
  details?: Record<string, unknown>;
}

export const SYSTEM_CONTEXT: RequestContext = {
  actor: "system",
  role: null,
  requestId: null,
  sourceAddress: null,
};
