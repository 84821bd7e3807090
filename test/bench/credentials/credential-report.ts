import { percentile } from "../issuance/load-loops.js";
import type { LoadProfile } from "../issuance/load-profile.js";
import type { BackendResult } from "./credential-suite.js";
import type { PairCase, SideName, SideRun } from "./paired-runs.js";

/** Local-credential throughput as a fraction of access-token throughput, at least, both at their peak. */
export const MIN_LOCAL_TO_TOKEN_RATIO = 0.6;
/** How many backend states the CPU table lists per run, busiest first. */
const LISTED_BACKEND_STATES = 3;

const rate = (value: number | undefined) => (value === undefined ? "n/a" : Math.round(value).toString());
const ms = (value: number) => (Number.isNaN(value) ? "n/a" : value.toFixed(2));
const cores = (value: number | undefined) => (value === undefined ? "n/a" : value.toFixed(2));
/** CPU time per completed request in milliseconds, from CPU use in cores and requests per second. */
const cpuMs = (coresUsed: number | undefined, perSecond: number) => (coresUsed === undefined || perSecond === 0 ? undefined : (coresUsed * 1000) / perSecond);
const ratio = (numerator: number | undefined, denominator: number | undefined) =>
  numerator === undefined || denominator === undefined || denominator === 0 ? "n/a" : (numerator / denominator).toFixed(2);

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Returns the run with the median throughput. Of an even number of runs, it returns the faster of the middle two. */
export function medianRun(runs: SideRun[] | undefined): SideRun | undefined {
  if (!runs || runs.length === 0) {
    return undefined;
  }
  const sorted = [...runs].sort((left, right) => left.loop.perSecond - right.loop.perSecond);
  return sorted[Math.floor(sorted.length / 2)];
}

function perRound(runs: SideRun[] | undefined): string {
  return runs && runs.length > 0 ? runs.map((run) => rate(run.loop.perSecond)).join(" / ") : "n/a";
}

function latency(run: SideRun | undefined): string {
  return run ? `${ms(percentile(run.loop.latenciesMs, 0.5))} / ${ms(percentile(run.loop.latenciesMs, 0.99))}` : "n/a";
}

function failures(pair: PairCase): string {
  return String(Object.values(pair.runs).reduce((sum, runs) => sum + runs.reduce((subtotal, run) => subtotal + run.loop.failed, 0), 0));
}

/** Formats local-credential issuance against access-token issuance, per backend and concurrency. */
export function localTable(results: BackendResult[]): string {
  const rows = results.flatMap((result) =>
    result.local.map((pair) => {
      const token = medianRun(pair.runs.token);
      const local = medianRun(pair.runs.local);
      return [
        result.backend,
        String(pair.concurrency),
        perRound(pair.runs.token),
        perRound(pair.runs.local),
        rate(token?.loop.perSecond),
        rate(local?.loop.perSecond),
        ratio(local?.loop.perSecond, token?.loop.perSecond),
        latency(token),
        latency(local),
        failures(pair),
      ];
    }),
  );
  return table(
    [
      "backend",
      "concurrency",
      "tokens/s per round",
      "credentials/s per round",
      "tokens/s (median)",
      "credentials/s (median)",
      "credentials / tokens",
      "token p50 / p99 ms",
      "credential p50 / p99 ms",
      "failed",
    ],
    rows,
  );
}

/** Formats dynamic-credential issuance against the bare-role baseline, per concurrency. */
export function dynamicTable(results: BackendResult[]): string {
  const rows = results.flatMap((result) =>
    (result.dynamic?.cases ?? []).map((pair) => {
      const broker = medianRun(pair.runs.dynamic);
      const bare = medianRun(pair.runs["bare-roles"]);
      const bareAdapter = medianRun(pair.runs["bare-roles-adapter"]);
      return [
        result.backend,
        String(pair.concurrency),
        perRound(pair.runs.dynamic),
        rate(broker?.loop.perSecond),
        latency(broker),
        perRound(pair.runs["bare-roles"]),
        rate(bare?.loop.perSecond),
        ratio(broker?.loop.perSecond, bare?.loop.perSecond),
        bareAdapter ? `${rate(bareAdapter.loop.perSecond)} on ${bareAdapter.concurrency}` : "same as left",
        bareAdapter ? ratio(broker?.loop.perSecond, bareAdapter.loop.perSecond) : "",
        latency(bare),
        failures(pair),
      ];
    }),
  );
  return table(
    [
      "broker database",
      "concurrency",
      "broker roles/s per round",
      "broker roles/s (median)",
      "broker p50 / p99 ms",
      "bare roles/s per round",
      "bare roles/s (median)",
      "broker / bare",
      "bare roles/s on the adapter's sessions",
      "broker / that",
      "bare p50 / p99 ms",
      "failed",
    ],
    rows,
  );
}

/** CPU use and PostgreSQL backend states of the median run of each side and concurrency. */
export function profileTable(results: BackendResult[]): string {
  const sides: SideName[] = ["token", "local", "dynamic", "bare-roles", "bare-roles-adapter"];
  const rows = results.flatMap((result) =>
    [...result.local, ...(result.dynamic?.cases ?? [])].flatMap((pair) =>
      sides.flatMap((side) => {
        const run = medianRun(pair.runs[side]);
        if (!run) {
          return [];
        }
        const { cpu } = run.profile;
        const perRequest = (coresUsed: number | undefined) => formatMs(cpuMs(coresUsed, run.loop.perSecond));
        return [
          [
            result.backend,
            side,
            String(run.concurrency),
            rate(run.loop.perSecond),
            cores(cpu.bench),
            cores(cpu.broker),
            cores(cpu.server),
            cores(cpu.other),
            perRequest(cpu.bench),
            perRequest(cpu.broker),
            perRequest(cpu.server),
            side === "token" ? String(run.signedOnDemand) : "",
            backendStates(run.profile),
          ],
        ];
      }),
    ),
  );
  return table(
    [
      "backend",
      "side",
      "loops",
      "per second",
      "bench cores",
      "broker cores",
      "server cores",
      "other cores",
      "bench CPU ms / request",
      "broker CPU ms / request",
      "server CPU ms / request",
      "signed on demand",
      "PostgreSQL backends (average count)",
    ],
    rows,
  );
}

function formatMs(value: number | undefined): string {
  return value === undefined ? "n/a" : value.toFixed(2);
}

/**
 * Adds up the CPU time per request of the benchmark process, the broker and PostgreSQL,
 * in milliseconds, or returns undefined when the broker's share is unknown. On PGlite the
 * database runs inside the broker, so its share is part of the broker's.
 */
function machineCpuMs(run: SideRun): number | undefined {
  const { cpu } = run.profile;
  if (cpu.broker === undefined) {
    return undefined;
  }
  return cpuMs(cpu.bench + cpu.broker + (cpu.server ?? 0), run.loop.perSecond);
}

function backendStates(profile: LoadProfile): string {
  if (profile.activitySamples === 0) {
    return "n/a";
  }
  return [...profile.backendStates]
    .sort(([, left], [, right]) => right - left)
    .slice(0, LISTED_BACKEND_STATES)
    .map(([state, count]) => `${state} ${count.toFixed(1)}`)
    .join("; ");
}

/**
 * Judges the local target on each backend from the peak (over concurrencies) of the median
 * runs of each side, and reports the dynamic ratio, which has no target.
 */
export function verdicts(results: BackendResult[]): string[] {
  const lines: string[] = [];
  for (const result of results) {
    const tokenPeak = peak(result.local, "token");
    const localPeak = peak(result.local, "local");
    if (tokenPeak && localPeak) {
      const peakRatio = localPeak.loop.perSecond / tokenPeak.loop.perSecond;
      const ratios = result.local.map((pair) => ratio(medianRun(pair.runs.local)?.loop.perSecond, medianRun(pair.runs.token)?.loop.perSecond));
      lines.push(
        `${result.backend}: ${peakRatio >= MIN_LOCAL_TO_TOKEN_RATIO ? "MET" : "MISSED"}: local credentials peak at ${rate(localPeak.loop.perSecond)}/s (concurrency ${localPeak.concurrency}), ` +
          `${peakRatio.toFixed(2)} of access tokens' peak of ${rate(tokenPeak.loop.perSecond)}/s (concurrency ${tokenPeak.concurrency}); target at least ${MIN_LOCAL_TO_TOKEN_RATIO}. ` +
          `Ratio by concurrency: ${result.local.map((pair, index) => `${pair.concurrency}: ${ratios[index]}`).join(", ")}`,
      );
      const tokenCpu = machineCpuMs(tokenPeak);
      const localCpu = machineCpuMs(localPeak);
      if (tokenCpu !== undefined && localCpu !== undefined) {
        // Where all three processes share the machine's cores and are CPU-bound, throughput
        // goes with the inverse of CPU time per request, and CPU time varies less with other load.
        lines.push(
          `${result.backend}: CPU time per request at those peaks (benchmark + broker + server): token ${formatMs(tokenCpu)} ms, local credential ${formatMs(localCpu)} ms; ` +
            `their inverse ratio, an estimate of the throughput ratio on a CPU-bound machine, is ${(tokenCpu / localCpu).toFixed(2)}`,
        );
      }
    }

    const dynamicPeak = peak(result.dynamic?.cases ?? [], "dynamic");
    const barePeak = peak(result.dynamic?.cases ?? [], "bare-roles");
    if (dynamicPeak && barePeak) {
      lines.push(
        `${result.backend}: dynamic roles (no target): the broker peaks at ${rate(dynamicPeak.loop.perSecond)} roles/s (concurrency ${dynamicPeak.concurrency}), ` +
          `${ratio(dynamicPeak.loop.perSecond, barePeak.loop.perSecond)} of the bare loop's peak of ${rate(barePeak.loop.perSecond)} roles/s (${barePeak.concurrency} connections); ` +
          `CPU time per role (benchmark + broker + server): broker ${formatMs(machineCpuMs(dynamicPeak))} ms, bare loop ${formatMs(machineCpuMs(barePeak))} ms`,
      );
    }
  }
  return lines.length > 0 ? lines : ["no ratio: the run measured no complete pair (see --cases)"];
}

/** Returns the median run with the highest throughput over all concurrencies of one side. */
function peak(pairs: PairCase[], side: SideName): SideRun | undefined {
  const medians = pairs.map((pair) => medianRun(pair.runs[side])).filter((run): run is SideRun => run !== undefined);
  return medians.length === 0 ? undefined : medians.reduce((best, run) => (run.loop.perSecond > best.loop.perSecond ? run : best));
}
