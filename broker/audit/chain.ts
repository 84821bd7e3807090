import { canonicalJson, sha256Hex } from "./canonical.js";

/** Hash that the first event of the chain points back to. */
export const GENESIS_HASH = "0".repeat(64);

/** The fields of an audit event that its hash covers, other than `seq` and `prevHash`. */
export interface EventContent {
  occurredAt: Date;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  requestId: string | null;
  sourceAddress: string | null;
  details: Record<string, unknown>;
}

/** An event's content with its place in the chain. */
export interface ChainedContent extends EventContent {
  seq: number;
  prevHash: string;
}

/** Canonical JSON of an event's content: snake_case keys, sorted at every level. */
export function canonicalContent(content: EventContent): string {
  return canonicalJson({
    occurred_at: content.occurredAt.toISOString(),
    actor: content.actor,
    action: content.action,
    target: content.target,
    outcome: content.outcome,
    request_id: content.requestId,
    source_address: content.sourceAddress,
    details: content.details,
  });
}

/**
 * SHA-256, as hex, of `prev_hash + "\n" + seq + "\n" + canonical content`. The chainer
 * and every verifier compute it from the stored row, so they agree by construction.
 */
export function hashEvent(content: ChainedContent): string {
  return sha256Hex(`${content.prevHash}\n${content.seq}\n${canonicalContent(content)}`);
}
