import { performance } from "node:perf_hooks";
import type { SecretsBrokerClient } from "../../../sdk/index.js";
import { READ_SCOPE } from "../../support/sdk-setup.js";

/** Median nanoseconds per call of the SDK's cached getAccessToken and of the baseline. */
export interface CachedTokenResult {
  calls: number;
  rounds: number;
  sdkNs: number;
  baselineNs: number;
}

const WARMUP_CALLS = 100_000;

/**
 * Times `getAccessToken` served from the cache against a baseline of the least an
 * async cache can do: a Map lookup returned through `Promise.resolve` and awaited. Both
 * run in the same rounds, alternating which goes first.
 */
export async function measureCachedToken(client: SecretsBrokerClient, calls: number, rounds: number): Promise<CachedTokenResult> {
  const request = { scope: READ_SCOPE };
  const token = await client.getAccessToken(request);
  const cache = new Map([[READ_SCOPE, token]]);
  const baseline = (key: string) => Promise.resolve(cache.get(key));
  const sdk = () => client.getAccessToken(request);
  const fromCache = (await sdk()).accessToken === token.accessToken;
  if (!fromCache) {
    throw new Error("the cached token changed during the benchmark; is the token TTL shorter than the run?");
  }

  await timeCalls(sdk, WARMUP_CALLS);
  await timeCalls(() => baseline(READ_SCOPE), WARMUP_CALLS);
  const sdkTimes: number[] = [];
  const baselineTimes: number[] = [];
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      sdkTimes.push(await timeCalls(sdk, calls));
      baselineTimes.push(await timeCalls(() => baseline(READ_SCOPE), calls));
    } else {
      baselineTimes.push(await timeCalls(() => baseline(READ_SCOPE), calls));
      sdkTimes.push(await timeCalls(sdk, calls));
    }
  }
  return { calls, rounds, sdkNs: median(sdkTimes), baselineNs: median(baselineTimes) };
}

/** Returns nanoseconds per call of `call`, awaited `calls` times in a row. */
async function timeCalls(call: () => Promise<unknown>, calls: number): Promise<number> {
  const started = performance.now();
  for (let index = 0; index < calls; index++) {
    await call();
  }
  return ((performance.now() - started) * 1e6) / calls;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
