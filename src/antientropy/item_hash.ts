/**
 * What anti-entropy compares: each key's state on a replica is summarised by a 64-bit hash of the
 * key and its version clocks (the sorted version blobs: equal clocks mean equal values, because a
 * dot is never reused), and the key falls in one segment, a leaf of the Merkle tree, chosen by a
 * hash of the key alone. Keys with no versions hash to 0, so an absent key and a purged one count
 * the same. SipHash-2-4 under a fixed key: not a secret, a well-mixed hash. Pure.
 */
import type { Version } from "../storage/version_set_format.ts";
import { compareBytes } from "../util/bytes.ts";
import { sipHash24, sipHashKey } from "../util/siphash.ts";

const fixedKey = sipHashKey(new Uint8Array([0x6c, 0x6f, 0x6f, 0x6d, 0x6b, 0x76, 0x2d, 0x61, 0x61, 0x65, 0x2d, 0x74, 0x72, 0x65, 0x65, 0x31]));
const scratch = new Uint8Array(8);

/** A 64-bit hash as two unsigned 32-bit halves. */
export interface Hash64 {
  readonly high: number;
  readonly low: number;
}

export const zeroHash: Hash64 = { high: 0, low: 0 };

/** The segment (tree leaf) of `key`, 0..buckets-1. REQUIRES: buckets a power of two. */
export function segmentOf(key: Uint8Array, buckets: number): number {
  sipHash24(fixedKey, key, scratch);
  return (scratch[0]! | (scratch[1]! << 8) | (scratch[2]! << 16) | (scratch[3]! << 24)) & (buckets - 1);
}

/** The hash of `key` holding `versions` ([] hashes to zero). */
export function itemHash(key: Uint8Array, versions: readonly Version[]): Hash64 {
  if (versions.length === 0) return zeroHash;
  const blobs = versions.map((version) => version.version).sort(compareBytes);
  let length = 4 + key.length;
  for (const blob of blobs) length += 4 + blob.length;
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, key.length, true);
  bytes.set(key, 4);
  let offset = 4 + key.length;
  for (const blob of blobs) {
    view.setUint32(offset, blob.length, true);
    bytes.set(blob, offset + 4);
    offset += 4 + blob.length;
  }
  sipHash24(fixedKey, bytes, scratch);
  const out = new DataView(scratch.buffer);
  return { low: out.getUint32(0, true), high: out.getUint32(4, true) };
}
