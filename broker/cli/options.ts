import { resolveTime } from "../config/relative-time.js";
import { UsageError } from "./cli-error.js";

/** Parses a time option given as RFC 3339 or relative (`30d`, `-12h`). */
export function parseTimeOption(option: string, value: string): string {
  const resolved = resolveTime(value);
  if (Number.isNaN(Date.parse(resolved))) {
    throw new UsageError(`${option} must be an RFC 3339 time (2027-01-31T00:00:00Z) or relative (30d, -12h), not '${value}'`);
  }
  return resolved;
}

export function parseIntegerOption(option: string, value: string): number {
  if (!/^\d+$/.test(value)) {
    throw new UsageError(`${option} must be a whole number, not '${value}'`);
  }
  return Number(value);
}

/** Collects a repeatable option (`--scope a --scope b`) into a list. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
