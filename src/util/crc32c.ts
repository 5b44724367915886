/**
 * CRC-32C (Castagnoli) from @node-rs/crc32 (SIMD, native; loads on Node and Deno), plus LevelDB's
 * masking: a CRC stored next to data that itself contains CRCs is masked so that a CRC of a CRC
 * does not collide trivially.
 */
import { crc32c as nativeCrc32c } from "@node-rs/crc32";
import { Buffer } from "node:buffer";

const MASK_DELTA = 0xa282ead8;

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** CRC-32C of `data`, continuing from `initial` (0 for a fresh checksum). Returns an unsigned 32-bit value. */
export function crc32c(data: Uint8Array, initial = 0): number {
  return nativeCrc32c(asBuffer(data), initial) >>> 0;
}

export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

export function unmaskCrc(masked: number): number {
  const rotated = (masked - MASK_DELTA) >>> 0;
  return ((rotated >>> 17) | (rotated << 15)) >>> 0;
}
