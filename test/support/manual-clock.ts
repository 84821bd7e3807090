import type { Clock } from "../../sdk/index.js";

/**
 * A clock the test moves by hand. `advance` runs every scheduled callback that falls
 * due, in order. Retry sleeps resolve at once and are recorded, so that a test can check the
 * delays the SDK chose without waiting for them.
 */
export class ManualClock implements Clock {
  private current = Date.now();
  private timers: { dueAt: number; callback: () => void; id: number }[] = [];
  private nextId = 0;
  readonly sleeps: number[] = [];

  now(): number {
    return this.current;
  }

  schedule(callback: () => void, delayMs: number): () => void {
    const id = this.nextId++;
    this.timers.push({ dueAt: this.current + Math.max(0, delayMs), callback, id });
    return () => {
      this.timers = this.timers.filter((timer) => timer.id !== id);
    };
  }

  sleep(delayMs: number): Promise<void> {
    this.sleeps.push(delayMs);
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** Timers still scheduled. */
  pending(): number {
    return this.timers.length;
  }

  advance(ms: number): void {
    this.current += ms;
    for (;;) {
      const due = this.timers.filter((timer) => timer.dueAt <= this.current).sort((a, b) => a.dueAt - b.dueAt)[0];
      if (due === undefined) return;
      this.timers = this.timers.filter((timer) => timer.id !== due.id);
      due.callback();
    }
  }
}
