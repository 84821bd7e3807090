import { readdir, readFile } from "node:fs/promises";
import path from "node:path";

/** Rows listed per table of the summary. */
const LISTED_ROWS = 15;

/** The parts of a V8 `.cpuprofile` (Chrome DevTools protocol `Profiler.Profile`) that the summary reads. */
interface CpuProfileFile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  /** Microseconds between consecutive samples; the first is relative to the profile's start. */
  timeDeltas: number[];
}

/** Self time of a group of functions, in milliseconds and as a share of the busy time. */
export interface ProfileRow {
  name: string;
  milliseconds: number;
  share: number;
}

/** Where a process spent its CPU time, by package or source file and by function. */
export interface ProfileSummary {
  file: string;
  /** Sampled time outside "(idle)", in milliseconds. */
  busyMilliseconds: number;
  byOrigin: ProfileRow[];
  byFunction: ProfileRow[];
  /**
   * Durations of runs of consecutive samples in V8's garbage collector, longest first, in
   * milliseconds. Each run is garbage collection on the main thread, so the event loop stood
   * still for about that long. The sampling interval (1 ms by default) bounds the precision.
   */
  garbageCollectionPausesMs: number[];
}

/**
 * Reads the one `.cpuprofile` that `node --cpu-prof` wrote into `directory` and adds up self
 * time, which is time spent in a function's own code, not in the functions it called. Self
 * time is grouped by origin (an npm package, a broker file, a Node.js internal module, or V8's
 * garbage collector) and by function. Time of async code is credited where it ran, for example
 * to the driver's socket handler and not to the service call that awaited the query.
 */
export async function summarizeCpuProfile(directory: string): Promise<ProfileSummary> {
  const files = (await readdir(directory)).filter((name) => name.endsWith(".cpuprofile"));
  if (files.length !== 1) {
    throw new Error(`expected one .cpuprofile in ${directory}, found ${files.length}; did the broker exit normally?`);
  }
  const file = path.join(directory, files[0]!);
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfileFile;

  const selfMicros = new Map<number, number>();
  profile.samples.forEach((nodeId, index) => {
    selfMicros.set(nodeId, (selfMicros.get(nodeId) ?? 0) + (profile.timeDeltas[index] ?? 0));
  });
  const garbageCollectorIds = new Set(profile.nodes.filter((node) => node.callFrame.functionName === "(garbage collector)").map((node) => node.id));

  const byOrigin = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let busyMicros = 0;
  for (const node of profile.nodes) {
    const micros = selfMicros.get(node.id) ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    if (micros === 0 || functionName === "(idle)") {
      continue;
    }
    busyMicros += micros;
    const origin = originOf(functionName, url);
    byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + micros);
    const location = url ? `${origin} ${path.basename(url)}:${lineNumber + 1}` : origin;
    const name = `${functionName || "(anonymous)"} (${location})`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
  }

  const rows = (totals: Map<string, number>) =>
    [...totals]
      .sort(([, left], [, right]) => right - left)
      .slice(0, LISTED_ROWS)
      .map(([name, micros]) => ({ name, milliseconds: micros / 1000, share: micros / busyMicros }));
  return {
    file,
    busyMilliseconds: busyMicros / 1000,
    byOrigin: rows(byOrigin),
    byFunction: rows(byFunction),
    garbageCollectionPausesMs: garbageCollectionRuns(profile, garbageCollectorIds),
  };
}

/** Adds up the time of each run of consecutive garbage-collector samples, in milliseconds, longest first. */
function garbageCollectionRuns(profile: CpuProfileFile, garbageCollectorIds: Set<number>): number[] {
  const runs: number[] = [];
  let current = 0;
  profile.samples.forEach((nodeId, index) => {
    if (garbageCollectorIds.has(nodeId)) {
      current += profile.timeDeltas[index] ?? 0;
    } else if (current > 0) {
      runs.push(current / 1000);
      current = 0;
    }
  });
  if (current > 0) {
    runs.push(current / 1000);
  }
  return runs.sort((left, right) => right - left);
}

/** Groups a frame by npm package, broker source file, Node.js module, or V8's own pseudo-frames. */
function originOf(functionName: string, url: string): string {
  if (!url) {
    // "(garbage collector)" and "(program)" are V8's pseudo-frames; others are builtins without a script.
    return functionName.startsWith("(") ? functionName : "(V8 builtins)";
  }
  const packageMatch = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (packageMatch) {
    return packageMatch[1]!;
  }
  const distMatch = /\/dist\/(broker\/.+)\.js$/.exec(url);
  if (distMatch) {
    return distMatch[1]!;
  }
  if (url.startsWith("node:")) {
    // node:internal/streams/readable -> node:internal/streams; node:_http_server stays whole.
    const parts = url.split("/");
    return parts.length > 2 ? parts.slice(0, 2).join("/") : url;
  }
  return url;
}
