import { createHmac, randomBytes } from "node:crypto";
import type { GeneratePolicy } from "../contract.js";
import type { InvalidSetting } from "../errors.js";

export type CharacterClass = GeneratePolicy["classes"][number];

/**
 * Characters of each class. Symbols leave out quotes, the backslash, the backtick and
 * the space, which need escaping in shells, JSON, SQL and connection strings.
 */
export const CHARACTER_CLASSES: Record<CharacterClass, string> = {
  lower: "abcdefghijklmnopqrstuvwxyz",
  upper: "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
  digits: "0123456789",
  symbols: "!#$%&()*+,-./:;<=>?@[]^_{|}~",
};

/** Maximum length of a generated value, in characters. */
export const MAX_GENERATED_LENGTH = 4096;

/** Random bytes drawn per refill of the pool that `RandomIndexSource` reads. */
const RANDOM_POOL_BYTES = 512;
const UINT32_RANGE = 2 ** 32;

/** Bytes of one HMAC-SHA256 block of `seededRandomBytes`. */
const SEEDED_BLOCK_BYTES = 32;

/** A source of `size` uniformly random bytes, such as crypto.randomBytes. */
export type RandomBytes = (size: number) => Buffer;

/** Lists what is wrong with a policy, each entry named by its field under `generate`. */
export function generatePolicyProblems(policy: GeneratePolicy): InvalidSetting[] {
  const problems: InvalidSetting[] = [];
  const classes = Array.isArray(policy.classes) ? policy.classes : [];
  if (!Array.isArray(policy.classes) || classes.length === 0) {
    problems.push({ name: "generate.classes", reason: `must list at least one of ${Object.keys(CHARACTER_CLASSES).join(", ")}` });
  }
  const unknown = classes.filter((name) => !Object.hasOwn(CHARACTER_CLASSES, name));
  if (unknown.length > 0) {
    problems.push({ name: "generate.classes", reason: `unknown class ${unknown.map(String).join(", ")}; use ${Object.keys(CHARACTER_CLASSES).join(", ")}` });
  }
  if (new Set(classes).size !== classes.length) {
    problems.push({ name: "generate.classes", reason: "must list each class once" });
  }
  const minimum = Math.max(classes.length, 1);
  if (!Number.isInteger(policy.length) || policy.length < minimum || policy.length > MAX_GENERATED_LENGTH) {
    problems.push({
      name: "generate.length",
      reason: `must be an integer from ${minimum} (one character per class) to ${MAX_GENERATED_LENGTH}`,
    });
  }
  if (typeof policy.field !== "string" || policy.field.length === 0) {
    problems.push({ name: "generate.field", reason: "must be a non-empty field name" });
  }
  return problems;
}

/**
 * Generates a value of `policy.length` characters from the requested classes, with at
 * least one character of each class. One character of each class is drawn first and the
 * rest from the union of the classes, then a Fisher-Yates shuffle mixes their positions.
 * Every draw uses `bytes` (crypto.randomBytes by default) with rejection sampling, so no
 * character is more likely than another within its alphabet. Throws RangeError for an
 * invalid policy.
 */
export function generateValue(policy: GeneratePolicy, bytes: RandomBytes = randomBytes): string {
  const problems = generatePolicyProblems(policy);
  if (problems.length > 0) {
    throw new RangeError(problems.map((problem) => `${problem.name}: ${problem.reason}`).join("; "));
  }

  const random = new RandomIndexSource(bytes);
  const alphabet = policy.classes.map((name) => CHARACTER_CLASSES[name]).join("");
  const characters = policy.classes.map((name) => pick(CHARACTER_CLASSES[name], random));
  while (characters.length < policy.length) {
    characters.push(pick(alphabet, random));
  }

  for (let index = characters.length - 1; index > 0; index -= 1) {
    const other = random.below(index + 1);
    [characters[index], characters[other]] = [characters[other]!, characters[index]!];
  }
  return characters.join("");
}

function pick(alphabet: string, random: RandomIndexSource): string {
  return alphabet[random.below(alphabet.length)]!;
}

/**
 * Returns a deterministic byte source: HMAC-SHA256 under `seed` of a 32-bit block
 * counter, block after block. For a secret 32-byte seed its output is indistinguishable
 * from random bytes, and the same seed always yields the same bytes.
 */
export function seededRandomBytes(seed: Buffer): RandomBytes {
  let counter = 0;
  let buffered: Buffer = Buffer.alloc(0);
  return function nextSeededBytes(size) {
    const blocks = [buffered];
    for (let available = buffered.length; available < size; available += SEEDED_BLOCK_BYTES) {
      const index = Buffer.alloc(4);
      index.writeUInt32BE(counter);
      counter += 1;
      blocks.push(createHmac("sha256", seed).update(index).digest());
    }
    const stream = Buffer.concat(blocks);
    buffered = stream.subarray(size);
    return stream.subarray(0, size);
  };
}

/** Uniform random integers from a byte source, read four bytes at a time from a pool. */
class RandomIndexSource {
  private pool: Buffer = Buffer.alloc(0);
  private offset = 0;

  constructor(private readonly bytes: RandomBytes) {}

  /**
   * Returns an integer in [0, bound). A 32-bit draw at or above the largest multiple of
   * `bound` is rejected and drawn again, so that `draw % bound` has no modulo bias.
   */
  below(bound: number): number {
    const limit = UINT32_RANGE - (UINT32_RANGE % bound);
    for (;;) {
      const draw = this.nextUint32();
      if (draw < limit) {
        return draw % bound;
      }
    }
  }

  private nextUint32(): number {
    if (this.offset + 4 > this.pool.length) {
      this.pool = this.bytes(RANDOM_POOL_BYTES);
      this.offset = 0;
    }
    const value = this.pool.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
}
