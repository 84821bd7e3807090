const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const RELATIVE_PATTERN = /^([+-]?)(\d{1,6})([smhdw])$/;

/**
 * Resolves a time given as RFC 3339 or relative to `now`: `30d` or `+30d` is 30 days
 * ahead, `-200d` is 200 days ago (units s, m, h, d, w). Returns RFC 3339, or the input
 * unchanged when it is neither form, so that the broker's validation names the field.
 */
export function resolveTime(value: string, now: Date = new Date()): string {
  const match = RELATIVE_PATTERN.exec(value.trim());
  if (!match) {
    return value;
  }
  const [, sign, amount, unit] = match as unknown as [string, string, string, string];
  const offset = Number(amount) * UNIT_MS[unit]!;
  return new Date(now.getTime() + (sign === "-" ? -offset : offset)).toISOString();
}
