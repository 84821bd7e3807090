import { createHash } from "node:crypto";
import { Cron } from "croner";
import type { RotationPolicy } from "../db/schema.js";

/**
 * When a secret is next due for rotation: the earlier of its schedule's next occurrence
 * after `since` (in the policy's time zone, UTC by default) and `since` plus its
 * maximum age. A scheduled rotation starts at an offset within the policy's window
 * that is fixed per secret, so that many secrets on one schedule do not all start in
 * the same second. Returns null without a policy.
 */
export function nextRotationAt(policy: RotationPolicy | null, since: Date, secretId: string): Date | null {
  if (!policy) {
    return null;
  }
  const candidates: number[] = [];
  if (policy.max_age !== undefined) {
    candidates.push(since.getTime() + policy.max_age * 1000);
  }
  if (policy.schedule !== undefined) {
    const occurrence = nextOccurrence(policy.schedule, policy.time_zone ?? "UTC", since);
    if (occurrence) {
      candidates.push(occurrence.getTime() + windowOffsetMs(policy.window, secretId));
    }
  }
  return candidates.length > 0 ? new Date(Math.min(...candidates)) : null;
}

function nextOccurrence(schedule: string, timeZone: string, after: Date): Date | null {
  const cron = new Cron(schedule, { timezone: timeZone, paused: true });
  try {
    return cron.nextRun(after);
  } finally {
    cron.stop();
  }
}

/** Returns a stable offset in [0, window) seconds, derived from the secret id, in milliseconds. */
function windowOffsetMs(windowSeconds: number | undefined, secretId: string): number {
  if (!windowSeconds) {
    return 0;
  }
  const hash = createHash("sha256").update(secretId).digest();
  return (hash.readUInt32BE(0) % windowSeconds) * 1000;
}
