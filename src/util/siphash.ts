/**
 * SipHash-2-4 with a 64-bit output (Aumasson, Bernstein: "SipHash: a fast short-input PRF",
 * INDOCRYPT 2012): a keyed hash that is a MAC for short messages. Without the 128-bit key an
 * attacker cannot compute the hash of any message, even after seeing the hashes of others.
 *
 * The 64-bit state words are kept as pairs of unsigned 32-bit halves (high, low), so no BigInt
 * and no allocation per message. Pure; the state lives in locals, so any thread may call it.
 * Checked against the reference vectors of the paper's implementation (test/siphash.test.ts).
 */
import { describe, LoomRangeError, LoomTypeError } from "./errors.ts";

/** Key length in bytes. */
export const sipHashKeyBytes = 16;
/** Output length in bytes (the 64-bit result, little-endian as in the reference). */
export const sipHashBytes = 8;

/** A key split into the 32-bit halves of its two little-endian 64-bit words k0, k1. */
export interface SipHashKey {
  readonly k0High: number;
  readonly k0Low: number;
  readonly k1High: number;
  readonly k1Low: number;
}

/** Prepares a 16-byte key. Throws LoomTypeError or LoomRangeError on anything else. */
export function sipHashKey(key: Uint8Array): SipHashKey {
  if (!(key instanceof Uint8Array)) throw new LoomTypeError(`siphash key failed: key is ${describe(key)}, must be a Uint8Array`);
  if (key.length !== sipHashKeyBytes) {
    throw new LoomRangeError(`siphash key failed: key is ${key.length} bytes, must be ${sipHashKeyBytes}`);
  }
  return { k0Low: readU32(key, 0), k0High: readU32(key, 4), k1Low: readU32(key, 8), k1High: readU32(key, 12) };
}

/**
 * SipHash-2-4 of `message` under `key`, written as 8 little-endian bytes into `out` at `offset`.
 * Returns `out`. REQUIRES: out has 8 bytes from offset.
 */
export function sipHash24(key: SipHashKey, message: Uint8Array, out: Uint8Array = new Uint8Array(sipHashBytes), offset = 0): Uint8Array {
  // v0..v3 = k0 ^ "somepseu", k1 ^ "dorandom", k0 ^ "lygenera", k1 ^ "tedbytes".
  let v0h = (key.k0High ^ 0x736f6d65) >>> 0;
  let v0l = (key.k0Low ^ 0x70736575) >>> 0;
  let v1h = (key.k1High ^ 0x646f7261) >>> 0;
  let v1l = (key.k1Low ^ 0x6e646f6d) >>> 0;
  let v2h = (key.k0High ^ 0x6c796765) >>> 0;
  let v2l = (key.k0Low ^ 0x6e657261) >>> 0;
  let v3h = (key.k1High ^ 0x74656462) >>> 0;
  let v3l = (key.k1Low ^ 0x79746573) >>> 0;
  const length = message.length;
  const fullBlocks = length >>> 3;
  // Steps 0..fullBlocks are the message blocks (the last one holds the tail and the length, as
  // the reference pads it); the step after them is the finalization.
  for (let step = 0; step <= fullBlocks + 1; step++) {
    const final = step > fullBlocks;
    let mh = 0;
    let ml = 0;
    let rounds = 4;
    if (!final) {
      if (step < fullBlocks) {
        ml = readU32(message, step * 8);
        mh = readU32(message, step * 8 + 4);
      } else {
        // The last block: the 0..7 remaining bytes, and the length's low byte in the top byte.
        const start = fullBlocks * 8;
        for (let index = length - 1; index >= start; index--) {
          const byte = message[index]!;
          if (index - start >= 4) mh = (mh << 8) | byte;
          else ml = (ml << 8) | byte;
        }
        ml >>>= 0;
        mh = (mh | ((length & 0xff) << 24)) >>> 0;
      }
      v3h = (v3h ^ mh) >>> 0;
      v3l = (v3l ^ ml) >>> 0;
      rounds = 2;
    } else {
      v2l = (v2l ^ 0xff) >>> 0;
    }
    for (let round = 0; round < rounds; round++) {
      // v0 += v1; v1 <<<= 13; v1 ^= v0; v0 <<<= 32
      let sum = v0l + v1l;
      v0l = sum >>> 0;
      v0h = (v0h + v1h + (sum > 0xffffffff ? 1 : 0)) >>> 0;
      let high = ((v1h << 13) | (v1l >>> 19)) >>> 0;
      v1l = ((v1l << 13) | (v1h >>> 19)) >>> 0;
      v1h = high;
      v1h = (v1h ^ v0h) >>> 0;
      v1l = (v1l ^ v0l) >>> 0;
      high = v0h;
      v0h = v0l;
      v0l = high;
      // v2 += v3; v3 <<<= 16; v3 ^= v2
      sum = v2l + v3l;
      v2l = sum >>> 0;
      v2h = (v2h + v3h + (sum > 0xffffffff ? 1 : 0)) >>> 0;
      high = ((v3h << 16) | (v3l >>> 16)) >>> 0;
      v3l = ((v3l << 16) | (v3h >>> 16)) >>> 0;
      v3h = high;
      v3h = (v3h ^ v2h) >>> 0;
      v3l = (v3l ^ v2l) >>> 0;
      // v0 += v3; v3 <<<= 21; v3 ^= v0
      sum = v0l + v3l;
      v0l = sum >>> 0;
      v0h = (v0h + v3h + (sum > 0xffffffff ? 1 : 0)) >>> 0;
      high = ((v3h << 21) | (v3l >>> 11)) >>> 0;
      v3l = ((v3l << 21) | (v3h >>> 11)) >>> 0;
      v3h = high;
      v3h = (v3h ^ v0h) >>> 0;
      v3l = (v3l ^ v0l) >>> 0;
      // v2 += v1; v1 <<<= 17; v1 ^= v2; v2 <<<= 32
      sum = v2l + v1l;
      v2l = sum >>> 0;
      v2h = (v2h + v1h + (sum > 0xffffffff ? 1 : 0)) >>> 0;
      high = ((v1h << 17) | (v1l >>> 15)) >>> 0;
      v1l = ((v1l << 17) | (v1h >>> 15)) >>> 0;
      v1h = high;
      v1h = (v1h ^ v2h) >>> 0;
      v1l = (v1l ^ v2l) >>> 0;
      high = v2h;
      v2h = v2l;
      v2l = high;
    }
    if (!final) {
      v0h = (v0h ^ mh) >>> 0;
      v0l = (v0l ^ ml) >>> 0;
    }
  }
  writeU32(out, offset, (v0l ^ v1l ^ v2l ^ v3l) >>> 0);
  writeU32(out, offset + 4, (v0h ^ v1h ^ v2h ^ v3h) >>> 0);
  return out;
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = value >>> 24;
}
