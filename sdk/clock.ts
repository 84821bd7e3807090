/**
 * The SDK's time source. The default is the system clock; tests inject a manual one so
 * that renewals and refreshes can be driven without sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Runs `callback` after `delayMs` in the background and returns a function that
   * cancels it. Like a database pool's, these timers keep the process running until the
   * client is closed.
   */
  schedule(callback: () => void, delayMs: number): () => void;
  /** Resolves after `delayMs`; used for retry backoff, which a caller awaits. */
  sleep(delayMs: number): Promise<void>;
}

/** The maximum delay setTimeout accepts (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(callback, delayMs) {
    const timer = setTimeout(callback, Math.min(Math.max(0, delayMs), MAX_TIMER_DELAY_MS));
    return () => clearTimeout(timer);
  },
  sleep: (delayMs) => new Promise((resolve) => setTimeout(resolve, Math.max(0, delayMs))),
};
