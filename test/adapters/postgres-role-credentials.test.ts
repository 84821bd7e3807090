import { describe, expect, it } from "vitest";
import {
  DEFAULT_NAME_PREFIX,
  DYNAMIC_ROLE_NAME,
  isDynamicRoleName,
  newPassword,
  newRoleName,
  PASSWORD_LENGTH,
} from "../../adapters/postgres/role-credentials.js";

const SAMPLES = 2000;

describe("postgres role credentials", () => {
  it("role name has prefix and 16 hex digits", () => {
    const name = newRoleName("orders");

    expect(name).toMatch(/^sb_orders_[0-9a-f]{16}$/);
    expect(isDynamicRoleName(name)).toBe(true);
  });

  it("role name defaults to dyn prefix", () => {
    expect(newRoleName(undefined)).toMatch(new RegExp(`^sb_${DEFAULT_NAME_PREFIX}_[0-9a-f]{16}$`));
  });

  it("longest role name fits identifier limit", () => {
    const name = newRoleName("a".repeat(16));

    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
    expect(name).toMatch(DYNAMIC_ROLE_NAME);
  });

  it("role names do not repeat", () => {
    const names = new Set(Array.from({ length: SAMPLES }, () => newRoleName(undefined)));

    expect(names.size).toBe(SAMPLES);
  });

  it.each([
    "postgres",
    "sb_dyn_0123456789abcde",
    "sb_dyn_0123456789abcdef0",
    "SB_DYN_0123456789ABCDEF",
    "sb_dyn_0123456789ABCDEF",
    "sb__0123456789abcdef",
    "sb_dyn-x_0123456789abcdef",
    "sb_dyn_0123456789abcdef\n",
    'sb_dyn_0123456789abcdef"; drop role postgres; --',
    `sb_${"a".repeat(44)}_0123456789abcdef`,
  ])("foreign role name %j rejected", (name) => {
    expect(isDynamicRoleName(name)).toBe(false);
  });

  it("password uses letters and digits", () => {
    for (let sample = 0; sample < SAMPLES; sample += 1) {
      expect(newPassword()).toMatch(new RegExp(`^[A-Za-z0-9]{${PASSWORD_LENGTH}}$`));
    }
  });

  it("passwords do not repeat", () => {
    const passwords = new Set(Array.from({ length: SAMPLES }, () => newPassword()));

    expect(passwords.size).toBe(SAMPLES);
  });

  it("password characters spread evenly", () => {
    const counts = new Map<string, number>();
    for (let sample = 0; sample < SAMPLES; sample += 1) {
      for (const character of newPassword()) {
        counts.set(character, (counts.get(character) ?? 0) + 1);
      }
    }
    // 80,000 draws over 62 symbols: about 1290 each, with a standard deviation near 36.
    const expected = (SAMPLES * PASSWORD_LENGTH) / 62;

    expect(counts.size).toBe(62);
    for (const count of counts.values()) {
      expect(Math.abs(count - expected)).toBeLessThan(expected * 0.2);
    }
  });
});
