/**
 * The one source of randomness: a seeded pseudo-random generator (sfc32, seeded through
 * splitmix32), so that a simulator seed replays a run exactly. Nothing in loomkv calls
 * Math.random(); code that needs randomness (jitter, peer choice, fault injection) takes a Prng.
 *
 * Not cryptographic. Not thread-safe: each worker or simulated node owns its own stream, obtained
 * with `fork()` from a parent stream.
 */
import { describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";

export interface Prng {
  /** A uniform integer in [0, 2^32). */
  nextU32(): number;
  /** A uniform float in [0, 1) with 53 random bits. */
  nextFloat(): number;
  /** A uniform integer in [0, maxExclusive), without modulo bias. REQUIRES: integer in 1..2^53. */
  nextInt(maxExclusive: number): number;
  /** A uniform integer in [minInclusive, maxExclusive). REQUIRES: safe integers, min < max. */
  nextRange(minInclusive: number, maxExclusive: number): number;
  /** True with `probability` (0 never, 1 always). Always consumes one draw. */
  chance(probability: number): boolean;
  /**
   * A child stream seeded from this one: deterministic (same parent state, same child), and
   * independent afterwards (draws from either do not change the other).
   */
  fork(): Prng;
  /** Shuffles `array` in place (Fisher-Yates); every permutation is equally likely. */
  shuffle<T>(array: T[]): void;
  /** A uniformly chosen element. REQUIRES: `array` is not empty. */
  pick<T>(array: readonly T[]): T;
}

const TWO_POW_32 = 2 ** 32;
const TWO_POW_53 = 2 ** 53;
/** Outputs discarded after seeding so that close seeds diverge before the first draw. */
const WARM_UP_DRAWS = 12;

/** murmur3's 32-bit finalizer: a bijection on 32-bit integers with full avalanche. */
function mix32(value: number): number {
  let x = value | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** splitmix32: the n-th output for a state; used only to spread seeds into sfc32 state. */
function splitmix32(state: number, n: number): number {
  return mix32((state + Math.imul(n, 0x9e3779b9)) | 0);
}

class Sfc32 implements Prng {
  #a: number;
  #b: number;
  #c: number;
  #d = 1;

  /** REQUIRES: 32-bit integers. Distinct (a, b, c) give distinct streams. */
  constructor(a: number, b: number, c: number) {
    this.#a = a | 0;
    this.#b = b | 0;
    this.#c = c | 0;
    for (let i = 0; i < WARM_UP_DRAWS; i++) this.nextU32();
  }

  nextU32(): number {
    const a = this.#a;
    const b = this.#b;
    const c = this.#c;
    const t = (((a + b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = b ^ (b >>> 9);
    this.#b = (c + (c << 3)) | 0;
    this.#c = (((c << 21) | (c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  nextFloat(): number {
    const high = this.nextU32() >>> 5; // 27 bits
    const low = this.nextU32() >>> 6; // 26 bits
    return (high * 2 ** 26 + low) / TWO_POW_53;
  }

  nextInt(maxExclusive: number): number {
    if (!Number.isInteger(maxExclusive) || maxExclusive < 1 || maxExclusive > TWO_POW_53) {
      throw new LoomRangeError(`nextInt failed: maxExclusive is ${describe(maxExclusive)}, must be an integer in 1..2^53`);
    }
    if (maxExclusive <= TWO_POW_32) {
      // Reject the last partial run of values so that every residue is equally likely.
      const limit = TWO_POW_32 - (TWO_POW_32 % maxExclusive);
      for (;;) {
        const value = this.nextU32();
        if (value < limit) return value % maxExclusive;
      }
    }
    const limit = TWO_POW_53 - (TWO_POW_53 % maxExclusive);
    for (;;) {
      const value = (this.nextU32() >>> 11) * TWO_POW_32 + this.nextU32();
      if (value < limit) return value % maxExclusive;
    }
  }

  nextRange(minInclusive: number, maxExclusive: number): number {
    if (!Number.isSafeInteger(minInclusive) || !Number.isSafeInteger(maxExclusive) || minInclusive >= maxExclusive) {
      throw new LoomRangeError(
        `nextRange failed: range is ${describe(minInclusive)}..${describe(maxExclusive)}, must be safe integers with min < max`,
      );
    }
    return minInclusive + this.nextInt(maxExclusive - minInclusive);
  }

  chance(probability: number): boolean {
    if (!(probability >= 0 && probability <= 1)) {
      throw new LoomRangeError(`chance failed: probability is ${describe(probability)}, must be in 0..1`);
    }
    return this.nextFloat() < probability;
  }

  fork(): Prng {
    const a = this.nextU32();
    const b = this.nextU32();
    const c = this.nextU32();
    // Mixing keeps the child's state from being a plain window of the parent's output.
    return new Sfc32(mix32(a ^ 0x2545f491), mix32(b ^ 0x6c8e9cf5), mix32(c ^ 0x3c6ef372));
  }

  shuffle<T>(array: T[]): void {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const held = array[i] as T;
      array[i] = array[j] as T;
      array[j] = held;
    }
  }

  pick<T>(array: readonly T[]): T {
    if (array.length === 0) throw new LoomRangeError("pick failed: array is empty");
    return array[this.nextInt(array.length)] as T;
  }
}

/**
 * A generator seeded from a safe integer (negative allowed; all 53 bits matter: seeds that differ
 * only above bit 31 give different streams).
 */
export function createPrng(seed: number): Prng {
  if (!Number.isSafeInteger(seed)) {
    throw new LoomTypeError(`create prng failed: seed is ${describe(seed)}, must be a safe integer`);
  }
  const low = seed >>> 0;
  const high = Math.floor(seed / TWO_POW_32) >>> 0;
  // splitmix32 is a bijection of its state for a fixed n, so (low, high) maps one-to-one onto (a, b).
  return new Sfc32(splitmix32(low, 1), splitmix32(high ^ 0x5bd1e995, 1), splitmix32(low ^ high, 2));
}
