/**
 * Bloom filter over byte-string keys, one per SSTable.
 *
 * Serialized form: `bits:u8[m / 8] probes:u8`, where m = 8 × (length − 1) is the number of bits
 * and `probes` (k) is the number of bits set per key. Bit p lives in byte p >> 3 at mask
 * 1 << (p & 7). A reader takes k from the last byte, so filters built with different
 * bits-per-key settings stay readable.
 *
 * Hashing: two 32-bit MurmurHash3 (x86_32) values of the key with different seeds, computed in one
 * pass, combined by Kirsch–Mitzenmacher double hashing: probe i tests bit (h1 + i·h2) mod m.
 * Hashing does not allocate. The seeds and the probe rule are part of the on-disk format: changing
 * them makes every stored filter answer wrongly (false negatives).
 */
import { assert } from "../util/assert.ts";
import { LoomRangeError } from "../util/errors.ts";

/** Bits per key when a caller does not choose: about 0.82 % false positives with 7 probes. */
export const BLOOM_BITS_PER_KEY_DEFAULT = 10;
/** Smallest filter in bits, so that tiny tables do not get a useless filter. */
const FILTER_BITS_MIN = 64;
/** Probe counts above this are refused on build and read as "may contain" (reserved). */
const PROBES_MAX = 30;
/** Largest filter: bit positions are computed in unsigned 32-bit arithmetic. */
const FILTER_BITS_MAX = 2 ** 32 - 8;

const SEED_FIRST = 0x9747b28c;
const SEED_SECOND = 0x5bd1e995;
const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

// Results of the last hashKey() call: two outputs without allocating a pair.
let hashFirst = 0;
let hashSecond = 0;

function mixFinal(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 of `key` with two seeds in one pass; results in hashFirst / hashSecond. */
function hashKey(key: Uint8Array): void {
  const length = key.length;
  const blocksEnd = length & ~3;
  let h1 = SEED_FIRST;
  let h2 = SEED_SECOND;
  let i = 0;
  for (; i < blocksEnd; i += 4) {
    let k = key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h1 ^= k;
    h1 = (h1 << 13) | (h1 >>> 19);
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
    h2 ^= k;
    h2 = (h2 << 13) | (h2 >>> 19);
    h2 = (Math.imul(h2, 5) + 0xe6546b64) | 0;
  }
  const tailLength = length & 3;
  if (tailLength > 0) {
    let k = 0;
    if (tailLength === 3) k ^= key[i + 2]! << 16;
    if (tailLength >= 2) k ^= key[i + 1]! << 8;
    k ^= key[i]!;
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h1 ^= k;
    h2 ^= k;
  }
  hashFirst = mixFinal(h1 ^ length);
  hashSecond = mixFinal(h2 ^ length);
}

/** Probes per key for a bits-per-key setting: round(bits · ln 2), clamped to 1..30. */
export function bloomProbeCount(bitsPerKey: number): number {
  return Math.min(PROBES_MAX, Math.max(1, Math.round(bitsPerKey * Math.LN2)));
}

/** The textbook false-positive rate (1 − e^(−k·n/m))^k of a filter with these parameters. */
export function bloomFalsePositiveRate(options: { keyCount: number; filterBits: number; probes: number }): number {
  const { keyCount, filterBits, probes } = options;
  return (1 - Math.exp((-probes * keyCount) / filterBits)) ** probes;
}

/**
 * The two hashes of a key that every filter probes with (the seeds are fixed), computed once so
 * that a point read probing many tables' filters hashes the key once: `keyHashes(key, into)`, then
 * `mayContainHashes(filter, into)` per filter.
 */
export interface KeyHashes {
  first: number;
  second: number;
}

/** Fills `into` with the hashes of `key`; no allocation. */
export function keyHashes(key: Uint8Array, into: KeyHashes): KeyHashes {
  hashKey(key);
  into.first = hashFirst;
  into.second = hashSecond;
  return into;
}

/**
 * True if `key` may be in the set the filter was built from; false means certainly absent.
 * `filter` may be a view into a larger buffer; it is neither copied nor modified. A filter shorter
 * than 2 bytes matches nothing; a probe count above 30 (reserved) matches everything.
 */
export function mayContain(filter: Uint8Array, key: Uint8Array): boolean {
  hashKey(key);
  return probe(filter, hashFirst, hashSecond);
}

/**
 * An empty filter of at least `bits` bits (the serialized form above) probing `probes` times per
 * key, for a set that grows one key at a time (`addHashes`): a memtable's.
 */
export function emptyBloomFilter(bits: number, probes: number): Uint8Array {
  assert(Number.isInteger(probes) && probes >= 1 && probes <= PROBES_MAX, `bloom filter probes must be 1..${PROBES_MAX}`);
  const byteCount = Math.ceil(Math.min(FILTER_BITS_MAX, Math.max(FILTER_BITS_MIN, bits)) / 8);
  const filter = new Uint8Array(byteCount + 1);
  filter[byteCount] = probes;
  return filter;
}

/** Adds a key, by the hashes `keyHashes` computed, to a filter made by `emptyBloomFilter`. */
export function addHashes(filter: Uint8Array, hashes: KeyHashes): void {
  const bits = (filter.length - 1) * 8;
  const probes = filter[filter.length - 1]!;
  let position = hashes.first % bits;
  const step = hashes.second % bits;
  for (let i = 0; i < probes; i++) {
    filter[position >>> 3]! |= 1 << (position & 7);
    position += step;
    if (position >= bits) position -= bits;
  }
}

/** mayContain for a key whose hashes `keyHashes` computed. */
export function mayContainHashes(filter: Uint8Array, hashes: KeyHashes): boolean {
  return probe(filter, hashes.first, hashes.second);
}

function probe(filter: Uint8Array, first: number, second: number): boolean {
  const length = filter.length;
  if (length < 2) return false;
  const probes = filter[length - 1]!;
  if (probes > PROBES_MAX) return true;
  const bits = (length - 1) * 8;
  let position = first % bits;
  const step = second % bits;
  for (let i = 0; i < probes; i++) {
    if ((filter[position >>> 3]! & (1 << (position & 7))) === 0) return false;
    position += step;
    if (position >= bits) position -= bits;
  }
  return true;
}

/**
 * Accumulates keys (as hash pairs, 8 bytes per key, so keys may be reused by the caller right
 * after `add` returns) and builds the serialized filter. The caller adds each distinct key once;
 * a duplicate only costs filter space.
 */
export class BloomFilterBuilder {
  readonly bitsPerKey: number;
  #hashes = new Uint32Array(1024);
  #keyCount = 0;

  constructor(bitsPerKey = BLOOM_BITS_PER_KEY_DEFAULT) {
    if (!(Number.isFinite(bitsPerKey) && bitsPerKey > 0 && bitsPerKey <= 64)) {
      throw new LoomRangeError(`bloom filter failed: bits per key must be in (0, 64], got ${String(bitsPerKey)}`);
    }
    this.bitsPerKey = bitsPerKey;
  }

  get keyCount(): number {
    return this.#keyCount;
  }

  add(key: Uint8Array): void {
    if (this.#keyCount * 2 === this.#hashes.length) {
      const grown = new Uint32Array(this.#hashes.length * 2);
      grown.set(this.#hashes);
      this.#hashes = grown;
    }
    hashKey(key);
    this.#hashes[this.#keyCount * 2] = hashFirst;
    this.#hashes[this.#keyCount * 2 + 1] = hashSecond;
    this.#keyCount++;
  }

  /** The serialized filter (a fresh buffer owned by the caller). The builder can still be added to. */
  finish(): Uint8Array {
    const probes = bloomProbeCount(this.bitsPerKey);
    const wantedBits = Math.max(FILTER_BITS_MIN, Math.ceil(this.#keyCount * this.bitsPerKey));
    const byteCount = Math.ceil(wantedBits / 8);
    const bits = byteCount * 8;
    assert(bits <= FILTER_BITS_MAX, `bloom filter of ${bits} bits exceeds the ${FILTER_BITS_MAX}-bit limit`);
    const filter = new Uint8Array(byteCount + 1);
    filter[byteCount] = probes;
    const hashes = this.#hashes;
    for (let key = 0; key < this.#keyCount; key++) {
      let position = hashes[key * 2]! % bits;
      const step = hashes[key * 2 + 1]! % bits;
      for (let i = 0; i < probes; i++) {
        filter[position >>> 3]! |= 1 << (position & 7);
        position += step;
        if (position >= bits) position -= bits;
      }
    }
    return filter;
  }
}

/** Builds the serialized filter of `keys` in one call. */
export function buildBloomFilter(keys: Iterable<Uint8Array>, bitsPerKey = BLOOM_BITS_PER_KEY_DEFAULT): Uint8Array {
  const builder = new BloomFilterBuilder(bitsPerKey);
  for (const key of keys) builder.add(key);
  return builder.finish();
}
