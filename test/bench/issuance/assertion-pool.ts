import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { MAX_ASSERTION_LIFETIME_SECONDS } from "../../../broker/tokens/client-assertion.js";
import type { BenchWorkload } from "./bench-workload.js";

/**
 * Age after which a pre-signed assertion is thrown away, in milliseconds. The broker accepts
 * it until `exp` (issued at plus MAX_ASSERTION_LIFETIME_SECONDS) plus the clock skew, so a
 * minute of margin covers the time between taking it from the pool and the broker's check.
 */
const MAX_POOLED_AGE_MS = (MAX_ASSERTION_LIFETIME_SECONDS - 60) * 1000;

interface PooledAssertion {
  assertion: string;
  signedAtMs: number;
}

/**
 * RFC 7523 client assertions for one workload, signed before a timed run so that ES256
 * signing in the benchmark process (about 80 µs each) does not take CPU from the broker on a
 * small machine. Each assertion has a new `jti` and is handed out once. When the pool runs
 * dry, `take` signs on demand and counts it, so the report can say so.
 */
export class AssertionPool {
  /** Signed assertions in signing order; those before `next` were handed out. */
  private ready: PooledAssertion[] = [];
  private next = 0;
  /** Assertions signed inside a timed run because the pool was empty. */
  signedOnDemand = 0;

  constructor(
    private readonly workload: BenchWorkload,
    private readonly audience: string,
  ) {}

  get size(): number {
    return this.ready.length - this.next;
  }

  /** Drops handed-out and expiring assertions, then signs new ones until the pool holds `count`. */
  async fill(count: number): Promise<void> {
    const oldest = Date.now() - MAX_POOLED_AGE_MS;
    this.ready = this.ready.slice(this.next).filter((item) => item.signedAtMs > oldest);
    this.next = 0;
    while (this.ready.length < count) {
      this.ready.push({ assertion: await this.sign(), signedAtMs: Date.now() });
    }
  }

  /** Returns an unused assertion, the oldest first, so that none expires while newer ones are used. */
  async take(): Promise<string> {
    const oldest = Date.now() - MAX_POOLED_AGE_MS;
    while (this.next < this.ready.length) {
      const item = this.ready[this.next]!;
      this.next += 1;
      if (item.signedAtMs > oldest) {
        return item.assertion;
      }
    }
    this.signedOnDemand += 1;
    return this.sign();
  }

  private sign(): Promise<string> {
    return new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: this.workload.kid, typ: "JWT" })
      .setIssuer(this.workload.accountId)
      .setSubject(this.workload.accountId)
      .setAudience(this.audience)
      .setIssuedAt()
      .setExpirationTime(`${MAX_ASSERTION_LIFETIME_SECONDS}s`)
      .setJti(randomUUID())
      .sign(this.workload.privateKey);
  }
}
