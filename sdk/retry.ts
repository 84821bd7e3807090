/** The retry policy for requests that failed on the network, with a 5xx or with a 429. */
export interface RetryPolicy {
  /** Attempts in all, the first included; 1 turns retries off. */
  maxAttempts: number;
  /** Delay before the second attempt; it doubles with each attempt, with ±50% jitter. */
  baseDelayMs: number;
  /** Maximum backoff delay. */
  maxDelayMs: number;
  /** Longest `Retry-After` the SDK waits for; a longer one ends the retries at once. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 30_000,
};

/** Exponential backoff with ±50% jitter, so that clients that failed together do not retry together. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exponential = policy.baseDelayMs * 2 ** Math.max(0, attempt - 1);
  const jittered = exponential * (0.5 + random());
  return Math.round(Math.min(policy.maxDelayMs, jittered));
}

/**
 * Reads a `Retry-After` header (RFC 9110 section 10.2.3): delay seconds or an HTTP date.
 * Returns milliseconds from `now`, or undefined when the header is absent or unreadable.
 */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null || header.trim() === "") {
    return undefined;
  }
  const value = header.trim();
  if (/^\d+$/.test(value)) {
    return Number(value) * 1000;
  }
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
