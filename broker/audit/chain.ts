import { canonicalJson, sha256Hex } from "./canonical.js";

/** Hash that the first event of the chain points back to. */
export const GENESIS_HASH = "0".repeat(64);

/** The fields of an audit event that its hash covers; everything but the hash itself. */
export interface ChainedContent {
  seq: number;
  occurredAt: Date;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  requestId: string | null;
  sourceAddress: string | null;
  details: Record<string, unknown>;
  prevHash: string;
}

/** SHA-256 over the previous hash and the canonical JSON of the event's own content. */
export function hashEvent(content: ChainedContent): string {
  const canonical = canonicalJson({
    seq: content.seq,
    occurred_at: content.occurredAt.toISOString(),
    actor: content.actor,
    action: content.action,
    target: content.target,
    outcome: content.outcome,
    request_id: content.requestId,
    source_address: content.sourceAddress,
    details: content.details,
  });
  return sha256Hex(`${content.prevHash}\n${canonical}`);
}
