import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { MAX_ASSERTION_LIFETIME_SECONDS } from "../../../broker/tokens/client-assertion.js";
import type { BenchWorkload } from "./bench-workload.js";

/**
 * Age after which a pre-signed assertion is thrown away, in milliseconds. The broker accepts
 * it until `exp`, which is MAX_ASSERTION_LIFETIME_SECONDS after `iat`, plus its clock skew.
 * The 10 seconds of margin cover the time from taking it out of the pool to the broker's check.
 */
const MAX_POOLED_AGE_MS = (MAX_ASSERTION_LIFETIME_SECONDS - 10) * 1000;

interface PooledAssertion {
  assertion: string;
  signedAtMs: number;
}

/**
 * RFC 7523 client assertions for one workload, signed before a timed run. Signing during the
 * run would take CPU from the broker on a small machine: jose 6 took about 80 µs per ES256
 * signature on the 2-core test machine. Each assertion has a new `jti` and is handed out
 * once. When the pool is empty, `take` signs on demand and counts it in `signedOnDemand`,
 * which the report shows.
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

  /** Drops handed-out and expiring assertions, then signs new ones until the pool contains `count`. */
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
    // One reading of the clock for both claims: two readings may fall in different seconds,
    // and then `exp` minus `iat` exceeds the maximum lifetime that the broker accepts.
    const issuedAt = Math.floor(Date.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: this.workload.kid, typ: "JWT" })
      .setIssuer(this.workload.accountId)
      .setSubject(this.workload.accountId)
      .setAudience(this.audience)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + MAX_ASSERTION_LIFETIME_SECONDS)
      .setJti(randomUUID())
      .sign(this.workload.privateKey);
  }
}
