import { performance } from "node:perf_hooks";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { createClient, privateKeyJwt, type SecretsBrokerClient } from "../../../sdk/index.js";
import { ManualClock } from "../../support/manual-clock.js";
import { READ_SCOPE, type SdkWorkload } from "../../support/sdk-setup.js";

/** Requests the clients sent during the simulated period, by kind. */
export interface ClientLoadResult {
  clients: number;
  ttlSeconds: number;
  simulatedSeconds: number;
  renewals: number;
  tokens: number;
  issues: number;
  other: number;
  /** One renewal per lease per refresh period (two thirds of the TTL). */
  minimumPerSecond: number;
  /** Wall-clock seconds the broker took to serve the simulated period's requests. */
  wallSeconds: number;
}

const ISSUE_CONCURRENCY = 50;
const STEP_MS = 1000;
const REFRESH_RATIO = 2 / 3;
/** Wait between checks while requests are in flight, so that polling leaves the CPU to the broker. */
const IN_FLIGHT_POLL_MS = 2;

/**
 * Starts `clients` SDK clients that each hold one credential of `secret` with a TTL of
 * `ttlSeconds`, on one shared manual clock, after the initial issues. It then moves the
 * clock through `simulatedSeconds`, one second at a time, and waits after each step until
 * the broker has responded to every request the step caused. The requests are counted by
 * kind. The broker runs on its own clock, so leases never end during the run: this
 * measures the steady renewal load, not expiry or max-TTL re-issues.
 */
export async function measureClientLoad(
  address: string,
  workload: SdkWorkload,
  secret: string,
  options: { clients: number; ttlSeconds: number; simulatedSeconds: number },
): Promise<ClientLoadResult> {
  const clock = new ManualClock();
  const counter = countingFetch();
  const clients: SecretsBrokerClient[] = [];
  for (let index = 0; index < options.clients; index++) {
    clients.push(createClient({ broker: address, identity: privateKeyJwt({ clientId: workload.accountId, key: workload.privateJwk as never }), clock, fetch: counter.fetch }));
  }

  try {
    for (let start = 0; start < clients.length; start += ISSUE_CONCURRENCY) {
      await Promise.all(clients.slice(start, start + ISSUE_CONCURRENCY).map((client) => client.getCredential(secret, { scope: READ_SCOPE, ttl: options.ttlSeconds })));
    }
    counter.reset();

    const started = performance.now();
    for (let elapsed = 0; elapsed < options.simulatedSeconds * 1000; elapsed += STEP_MS) {
      clock.advance(STEP_MS);
      await counter.settled();
    }
    const wallSeconds = (performance.now() - started) / 1000;
    const counts = counter.counts();
    return {
      clients: options.clients,
      ttlSeconds: options.ttlSeconds,
      simulatedSeconds: options.simulatedSeconds,
      ...counts,
      minimumPerSecond: options.clients / (options.ttlSeconds * REFRESH_RATIO),
      wallSeconds,
    };
  } finally {
    await closeAll(clients);
  }
}

async function closeAll(clients: SecretsBrokerClient[]): Promise<void> {
  for (let start = 0; start < clients.length; start += ISSUE_CONCURRENCY) {
    await Promise.all(clients.slice(start, start + ISSUE_CONCURRENCY).map((client) => client.close()));
  }
}

/** Wraps fetch to count requests by kind and to track the requests in flight. */
function countingFetch() {
  let inflight = 0;
  let counts = { renewals: 0, tokens: 0, issues: 0, other: 0 };
  const wrapped: typeof fetch = async (input, init) => {
    const path = new URL(String(input)).pathname;
    if (path.endsWith("/renew")) counts.renewals += 1;
    else if (path === "/v1/token") counts.tokens += 1;
    else if (path === "/v1/credentials") counts.issues += 1;
    else counts.other += 1;
    inflight += 1;
    try {
      const response = await fetch(input, init);
      // The body is read here, so that a request leaves the in-flight count only once its whole response has arrived.
      return new Response(await response.text(), { status: response.status, headers: response.headers });
    } finally {
      inflight -= 1;
    }
  };
  return {
    fetch: wrapped,
    counts: () => ({ ...counts }),
    reset: () => (counts = { renewals: 0, tokens: 0, issues: 0, other: 0 }),
    /** Resolves once no request is in flight and the SDK has had turns to start follow-up requests. */
    async settled(): Promise<void> {
      for (let quietTurns = 0; quietTurns < 3; ) {
        if (inflight > 0) {
          await sleep(IN_FLIGHT_POLL_MS);
          quietTurns = 0;
        } else {
          await nextTurn();
          quietTurns += 1;
        }
      }
    },
  };
}
