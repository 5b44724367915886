/**
 * YCSB's key choosers, ported from its Java source (site.ycsb.generator): `ZipfianGenerator`
 * (Gray et al., "Quickly Generating Billion-Record Synthetic Databases", SIGMOD 1994) and
 * `ScrambledZipfianGenerator`, which draws from a zipfian over 10^10 items with the constant 0.99
 * and spreads the result over the record count with a 64-bit FNV-1a hash, so the popular records
 * are scattered over the key space instead of clustered at its start (YCSB's `requestdistribution=
 * zipfian`). Randomness comes from the caller's seeded Prng, so a seed replays the same stream.
 */
import type { Prng } from "../src/io/prng.ts";

/** YCSB's ZipfianGenerator.ZIPFIAN_CONSTANT. */
export const ZIPFIAN_CONSTANT = 0.99;
/** ScrambledZipfianGenerator.ITEM_COUNT: the zipfian draws over this many items, then hashes. */
const SCRAMBLED_ITEM_COUNT = 10_000_000_000;
/** ScrambledZipfianGenerator.ZETAN: zeta(ITEM_COUNT, 0.99), precomputed by YCSB. */
const SCRAMBLED_ZETAN = 26.46902820178302;
const FNV_OFFSET_BASIS_64 = 0xcbf29ce484222325n;
const FNV_PRIME_64 = 1099511628211n;

/** zeta(n, theta) = sum over i in 1..n of 1 / i^theta. O(n): for small n only. */
export function zeta(n: number, theta: number): number {
  let sum = 0;
  for (let i = 1; i <= n; i++) sum += 1 / Math.pow(i, theta);
  return sum;
}

/** Item i in [0, items) with probability proportional to 1 / (i + 1)^theta (YCSB nextLong). */
export class Zipfian {
  readonly items: number;
  readonly theta: number;
  readonly #zetan: number;
  readonly #alpha: number;
  readonly #eta: number;
  readonly #random: Prng;

  /** REQUIRES: items >= 2, 0 < theta < 1, zetan = zeta(items, theta). */
  constructor(options: { items: number; theta: number; zetan: number; random: Prng }) {
    this.items = options.items;
    this.theta = options.theta;
    this.#zetan = options.zetan;
    this.#random = options.random;
    const zeta2theta = zeta(2, options.theta);
    this.#alpha = 1 / (1 - options.theta);
    this.#eta = (1 - Math.pow(2 / options.items, 1 - options.theta)) / (1 - zeta2theta / options.zetan);
  }

  next(): number {
    const u = this.#random.nextFloat();
    const uz = u * this.#zetan;
    if (uz < 1) return 0;
    if (uz < 1 + Math.pow(0.5, this.theta)) return 1;
    return Math.floor(this.items * Math.pow(this.#eta * u - this.#eta + 1, this.#alpha));
  }
}

/** YCSB's Utils.fnvhash64: FNV-1a over the 8 little-endian octets of `value`, then Math.abs. */
export function fnvHash64(value: number): bigint {
  let rest = BigInt(value);
  let hash = FNV_OFFSET_BASIS_64;
  for (let i = 0; i < 8; i++) {
    hash ^= rest & 0xffn;
    rest >>= 8n;
    hash = BigInt.asUintN(64, hash * FNV_PRIME_64);
  }
  const signed = BigInt.asIntN(64, hash);
  return signed < 0n ? -signed : signed;
}

/** Record numbers in [0, records), zipfian-popular and scattered (YCSB ScrambledZipfianGenerator). */
export class ScrambledZipfian {
  readonly records: number;
  readonly #zipfian: Zipfian;

  /** REQUIRES: records >= 1. */
  constructor(records: number, random: Prng) {
    this.records = records;
    // YCSB builds ZipfianGenerator(0, ITEM_COUNT): ITEM_COUNT + 1 items.
    this.#zipfian = new Zipfian({ items: SCRAMBLED_ITEM_COUNT + 1, theta: ZIPFIAN_CONSTANT, zetan: SCRAMBLED_ZETAN, random });
  }

  next(): number {
    return Number(fnvHash64(this.#zipfian.next()) % BigInt(this.records));
  }
}
