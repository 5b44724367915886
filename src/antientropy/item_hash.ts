/**
 * What anti-entropy compares: each key's state on a replica is summarised by a 64-bit hash of the
 * key and its version clocks (the sorted version blobs: equal clocks mean equal values, because a
 * dot is never reused), and the key falls in one segment, a leaf of the Merkle tree, chosen by the
 * low bits of its ring position (a hash of the key the write path computes anyway; the ring's
 * ranges are cut by the high bits, so segments and ranges are independent). Keys with no
 * versions hash to 0, so an absent key and a purged one count the same. SipHash-2-4 under a fixed
 * key: not a secret, a well-mixed hash. Pure.
 */
import { keyPosition } from "../ring/hash_ring.ts";
import type { Version } from "../storage/version_set_format.ts";
import { compareBytes } from "../util/bytes.ts";
import { sipHash24, sipHashKey } from "../util/siphash.ts";

const fixedKey = sipHashKey(new Uint8Array([0x6c, 0x6f, 0x6f, 0x6d, 0x6b, 0x76, 0x2d, 0x61, 0x61, 0x65, 0x2d, 0x74, 0x72, 0x65, 0x65, 0x31]));
const out = new Uint8Array(8);
const outView = new DataView(out.buffer);
/** The message hashed, reused across calls (grown when a key's versions need more). */
let message = new Uint8Array(256);
let messageView = new DataView(message.buffer);

/** A 64-bit hash as two unsigned 32-bit halves. */
export interface Hash64 {
  readonly high: number;
  readonly low: number;
}

export const zeroHash: Hash64 = { high: 0, low: 0 };

/** The segment (tree leaf) of a key at ring `position`, 0..buckets-1. REQUIRES: buckets a power of two <= 2^16. */
export function segmentAt(position: number, buckets: number): number {
  return position % buckets;
}

/** The segment of `key`. */
export function segmentOf(key: Uint8Array, buckets: number): number {
  return segmentAt(keyPosition(key), buckets);
}

/** The hash of `key` holding `versions` ([] hashes to zero). */
export function itemHash(key: Uint8Array, versions: readonly Version[]): Hash64 {
  if (versions.length === 0) return zeroHash;
  const blobs = versions.length === 1 ? [versions[0]!.version] : versions.map((version) => version.version).sort(compareBytes);
  let length = 4 + key.length;
  for (const blob of blobs) length += 4 + blob.length;
  if (message.length < length) {
    message = new Uint8Array(Math.max(length, message.length * 2));
    messageView = new DataView(message.buffer);
  }
  messageView.setUint32(0, key.length, true);
  message.set(key, 4);
  let offset = 4 + key.length;
  for (const blob of blobs) {
    messageView.setUint32(offset, blob.length, true);
    message.set(blob, offset + 4);
    offset += 4 + blob.length;
  }
  sipHash24(fixedKey, message.subarray(0, length), out);
  return { low: outView.getUint32(0, true), high: outView.getUint32(4, true) };
}
