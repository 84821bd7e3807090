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
  /** Resolves after `delayMs`, or at once when `signal` aborts; used for retry backoff, which a caller awaits. */
  sleep(delayMs: number, signal?: AbortSignal): Promise<void>;
}

/** The maximum delay setTimeout accepts (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(callback, delayMs) {
    const timer = setTimeout(callback, Math.min(Math.max(0, delayMs), MAX_TIMER_DELAY_MS));
    return () => clearTimeout(timer);
  },
  sleep(delayMs, signal) {
    return new Promise((resolve) => {
      const timer = setTimeout(finish, Math.max(0, delayMs));
      signal?.addEventListener("abort", finish, { once: true });
      function finish(): void {
        clearTimeout(timer);
        signal?.removeEventListener("abort", finish);
        resolve();
      }
    });
  },
};
