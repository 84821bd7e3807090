import { describe, expect, it } from "vitest";
import type { GeneratePolicy } from "../../adapters/contract.js";
import {
  CHARACTER_CLASSES,
  type CharacterClass,
  generatePolicyProblems,
  generateValue,
  MAX_GENERATED_LENGTH,
  seededRandomBytes,
} from "../../adapters/local/generate-value.js";

const ALL_CLASSES: CharacterClass[] = ["lower", "upper", "digits", "symbols"];

function policy(length: number, classes: CharacterClass[]): GeneratePolicy {
  return { length, classes, field: "value" };
}

function classesIn(value: string): Set<CharacterClass> {
  return new Set(ALL_CLASSES.filter((name) => [...value].some((character) => CHARACTER_CLASSES[name].includes(character))));
}

describe("generateValue", () => {
  it.each([
    { length: 1, classes: ["digits"] as CharacterClass[] },
    { length: 4, classes: ALL_CLASSES },
    { length: 32, classes: ALL_CLASSES },
    { length: 64, classes: ["lower", "upper"] as CharacterClass[] },
    { length: MAX_GENERATED_LENGTH, classes: ["symbols"] as CharacterClass[] },
  ])("length $length with $classes", ({ length, classes }) => {
    for (let draw = 0; draw < 100; draw += 1) {
      const value = generateValue(policy(length, classes));

      expect(value).toHaveLength(length);
      expect(classesIn(value)).toEqual(new Set(classes));
    }
  });

  it("each class present when length equals class count", () => {
    for (let draw = 0; draw < 500; draw += 1) {
      const value = generateValue(policy(4, ALL_CLASSES));

      expect(classesIn(value)).toEqual(new Set(ALL_CLASSES));
    }
  });

  it("only allowed characters over many draws", () => {
    const allowed = new Set([...CHARACTER_CLASSES.lower, ...CHARACTER_CLASSES.digits]);
    const seen = new Set<string>();

    for (let draw = 0; draw < 2000; draw += 1) {
      for (const character of generateValue(policy(16, ["lower", "digits"]))) {
        expect(allowed.has(character), `unexpected character ${JSON.stringify(character)}`).toBe(true);
        seen.add(character);
      }
    }
    expect(seen).toEqual(allowed);
  });

  it("symbols avoid characters that need escaping", () => {
    for (const character of [" ", '"', "'", "\\", "`"]) {
      expect(CHARACTER_CLASSES.symbols).not.toContain(character);
    }
  });

  it("draws digits without visible bias", () => {
    // 20,000 one-digit draws: each digit expects 2,000 (standard deviation about 42), so
    // a 10 % band is more than 4.5 standard deviations wide and a fair source stays inside.
    const counts = new Map<string, number>();
    for (let draw = 0; draw < 20_000; draw += 1) {
      const digit = generateValue(policy(1, ["digits"]));
      counts.set(digit, (counts.get(digit) ?? 0) + 1);
    }

    expect(counts.size).toBe(10);
    for (const [digit, count] of counts) {
      expect(count, `digit ${digit}`).toBeGreaterThan(1800);
      expect(count, `digit ${digit}`).toBeLessThan(2200);
    }
  });

  it("values differ between draws", () => {
    const values = new Set(Array.from({ length: 1000 }, () => generateValue(policy(20, ALL_CLASSES))));

    expect(values.size).toBe(1000);
  });
});

describe("generatePolicyProblems", () => {
  it.each([
    { case: "zero length", generate: { length: 0, classes: ["lower"], field: "v" }, names: ["generate.length"] },
    { case: "fractional length", generate: { length: 8.5, classes: ["lower"], field: "v" }, names: ["generate.length"] },
    { case: "too long", generate: { length: MAX_GENERATED_LENGTH + 1, classes: ["lower"], field: "v" }, names: ["generate.length"] },
    { case: "shorter than classes", generate: { length: 3, classes: ALL_CLASSES, field: "v" }, names: ["generate.length"] },
    { case: "no classes", generate: { length: 8, classes: [], field: "v" }, names: ["generate.classes"] },
    { case: "unknown class", generate: { length: 8, classes: ["hex"], field: "v" }, names: ["generate.classes"] },
    { case: "repeated class", generate: { length: 8, classes: ["lower", "lower"], field: "v" }, names: ["generate.classes"] },
    { case: "classes not a list", generate: { length: 8, classes: "lower", field: "v" }, names: ["generate.classes"] },
    { case: "empty field", generate: { length: 8, classes: ["lower"], field: "" }, names: ["generate.field"] },
    { case: "several problems", generate: { length: -1, classes: ["x"], field: "" }, names: ["generate.classes", "generate.length", "generate.field"] },
  ])("reports $case", ({ generate, names }) => {
    const problems = generatePolicyProblems(generate as unknown as GeneratePolicy);

    expect(problems.map((problem) => problem.name)).toEqual(names);
    expect(() => generateValue(generate as unknown as GeneratePolicy)).toThrow(RangeError);
  });

  it("accepts a valid policy", () => {
    expect(generatePolicyProblems(policy(32, ALL_CLASSES))).toEqual([]);
  });
});

describe("seeded generation", () => {
  const seed = Buffer.alloc(32, 7);

  it("same seed, same value", () => {
    const first = generateValue(policy(64, ALL_CLASSES), seededRandomBytes(seed));
    const second = generateValue(policy(64, ALL_CLASSES), seededRandomBytes(Buffer.from(seed)));

    expect(second).toBe(first);
    expect(classesIn(first)).toEqual(new Set(ALL_CLASSES));
  });

  it("other seed, other value", () => {
    const first = generateValue(policy(64, ALL_CLASSES), seededRandomBytes(seed));
    const other = generateValue(policy(64, ALL_CLASSES), seededRandomBytes(Buffer.alloc(32, 8)));

    expect(other).not.toBe(first);
  });

  it("byte stream continues across calls", () => {
    const whole = seededRandomBytes(seed)(100);
    const parts = seededRandomBytes(seed);

    expect(Buffer.concat([parts(30), parts(3), parts(67)])).toEqual(whole);
    expect(new Set(whole).size).toBeGreaterThan(50);
  });
});
