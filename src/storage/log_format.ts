/**
 * The commit-log framing, shared by log_writer.ts and log_reader.ts. The spec page is
 * docs/formats/log.md; this module is its executable form.
 *
 *   log      := block* partialBlock?
 *   block    := fragment* trailer?            (exactly LOG_BLOCK_BYTES long)
 *   fragment := maskedCrc32c:u32 length:u16 type:u8 payload:u8[length]
 *   trailer  := 0x00{1..6}                    (a block's last bytes when fewer than a header remain)
 *
 * Integers are little-endian. The CRC covers the type byte and the payload (1 + length bytes,
 * adjacent on disk) and is masked as util/crc32c.ts describes. A fragment never
 * crosses a block boundary; a logical record is one FULL fragment or FIRST MIDDLE* LAST.
 */
import { limits } from "../util/limits.ts";
import { assert } from "../util/assert.ts";

/** Size of a log block: fragments never cross a multiple of this offset. */
export const LOG_BLOCK_BYTES = limits.logBlockBytes;
/** maskedCrc32c (4) + length (2) + type (1). */
export const LOG_HEADER_BYTES = 7;
/** Offset of the length field and of the type byte inside a header; the CRC starts at the type byte. */
export const LOG_LENGTH_OFFSET = 4;
export const LOG_TYPE_OFFSET = 6;
/** Largest payload one fragment can carry (a whole block minus its header). */
export const LOG_FRAGMENT_BYTES_MAX = LOG_BLOCK_BYTES - LOG_HEADER_BYTES;
/** Largest logical record the writer accepts: one group-commit batch. */
export const LOG_RECORD_BYTES_MAX = limits.logBatchBytesMax;

/**
 * Fragment types, stored in each header. Append-only, explicit numbers; 0 is reserved so that
 * zero-filled space (a preallocated or zero-extended file) never parses as a fragment.
 */
export const FragmentType = {
  /** The whole logical record. */
  full: 1,
  /** The first piece of a record continued in the next block. */
  first: 2,
  /** A piece that fills a whole block between FIRST and LAST. */
  middle: 3,
  /** The final piece of a record. */
  last: 4,
} as const;
export type FragmentType = (typeof FragmentType)[keyof typeof FragmentType];

export function isFragmentType(value: number): value is FragmentType {
  return value >= FragmentType.full && value <= FragmentType.last;
}

const FRAGMENT_TYPE_NAMES: Record<number, string> = { 1: "full", 2: "first", 3: "middle", 4: "last" };

/** A type byte as a word for error messages: "full", …, or "unknown type 9". */
export function fragmentTypeName(value: number): string {
  return FRAGMENT_TYPE_NAMES[value] ?? `unknown type ${value}`;
}

/** Bytes left in the block that `offset` lies in (1..LOG_BLOCK_BYTES). */
export function blockBytesLeft(offset: number): number {
  return LOG_BLOCK_BYTES - (offset % LOG_BLOCK_BYTES);
}

assert(LOG_BLOCK_BYTES <= 0xffff + LOG_HEADER_BYTES, "a fragment length fits in the u16 length field");
assert(LOG_BLOCK_BYTES > 2 * LOG_HEADER_BYTES, "a block holds at least one header and payload byte");
