/**
 * The SSTable file format, shared by sstable_writer.ts and sstable_reader.ts. The spec page is
 * docs/formats/sstable.md; this module is its executable form: constants, the footer, the block
 * trailer, and encoders/decoders for the data, index and properties blocks.
 *
 *   table   := dataBlock* filterBlock propertiesBlock indexBlock footer
 *   block   := contents kind:u8 maskedCrc32c:u32      (the CRC covers contents and kind)
 *
 * All fixed-width integers are little-endian; varints are LEB128 (at most 8 bytes, values up to
 * 2^53 - 1). Decoders throw CorruptionError naming the file and the block's offset; they never
 * return a value read from bytes that failed a check.
 */
import type { StoredRecord } from "./record.ts";
import { ByteReader, ByteWriter } from "../util/bytes.ts";
import { crc32c, maskCrc, unmaskCrc } from "../util/crc32c.ts";
import { CorruptionError } from "../util/errors.ts";

/** Last 8 bytes of every table: 0xdb then "LOOMSST" (a non-ASCII first byte, as PNG does). */
export const SSTABLE_MAGIC: Uint8Array = Uint8Array.of(0xdb, 0x4c, 0x4f, 0x4f, 0x4d, 0x53, 0x53, 0x54);
/** Bumped on any incompatible change; a reader refuses versions it does not know. */
export const SSTABLE_FORMAT_VERSION = 1;
export const FOOTER_BYTES = 64;
/** kind:u8 + masked CRC-32C:u32 after every block's contents. */
export const BLOCK_TRAILER_BYTES = 5;
/** Entries between restart points in a data block (restart entries store their whole key). */
export const RESTART_INTERVAL = 16;

/** Block kinds, stored in each block trailer. Append-only; 0 is reserved (zeroed bytes never verify). */
export const BlockKind = {
  data: 1,
  filter: 2,
  properties: 3,
  index: 4,
} as const;
export type BlockKind = (typeof BlockKind)[keyof typeof BlockKind];

const BLOCK_KIND_NAMES: Record<number, string> = { 1: "data", 2: "filter", 3: "properties", 4: "index" };

/** Tags of the properties block. Append-only; 0 reserved; readers skip tags they do not know. */
export const PropertyTag = {
  recordCount: 1,
  keyCount: 2,
  smallestKey: 3,
  largestKey: 4,
  sequenceMin: 5,
  sequenceMax: 6,
  dataBlockCount: 7,
  dataBytes: 8,
  rawBytes: 9,
  bloomBitsPerKey: 10,
  createdAtMs: 11,
} as const;

/** Where a block's contents live: `size` excludes the 5-byte trailer that follows them. */
export interface BlockHandle {
  readonly offset: number;
  readonly size: number;
}

export interface Footer {
  readonly index: BlockHandle;
  readonly filter: BlockHandle;
  readonly properties: BlockHandle;
  readonly formatVersion: number;
}

export interface TableProperties {
  /** Format version from the footer. */
  readonly formatVersion: number;
  /** Records in the table (a key may have several). */
  readonly recordCount: number;
  /** Distinct keys (the Bloom filter holds exactly these). */
  readonly keyCount: number;
  /** Smallest and largest key; empty when the table has no records. */
  readonly smallestKey: Uint8Array;
  readonly largestKey: Uint8Array;
  /** Smallest and largest sequence of any record; 0 when the table has no records. */
  readonly sequenceMin: number;
  readonly sequenceMax: number;
  readonly dataBlockCount: number;
  /** Bytes of all data blocks, trailers included. */
  readonly dataBytes: number;
  /** Sum of key and payload lengths over all records (the size before prefix compression). */
  readonly rawBytes: number;
  readonly bloomBitsPerKey: number;
  /** Creation time supplied by the writer's caller (storage code reads no clock); 0 if none. */
  readonly createdAtMs: number;
}

// ---------------------------------------------------------------------------------------------
// Varints on raw views (allocation-free; the hot read path).

/** Position after the last readVarint(), or -1 if it ran past `limit` or over 8 bytes. */
export let varintEnd = 0;

export function readVarint(bytes: Uint8Array, position: number, limit: number): number {
  let result = 0;
  let scale = 1;
  if (position < 0) limit = 0; // a failed read before this one stays failed
  for (let i = 0; i < 8 && position < limit; i++) {
    const byte = bytes[position++]!;
    result += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      varintEnd = position;
      return result;
    }
    scale *= 0x80;
  }
  varintEnd = -1;
  return 0;
}

export function readU32(bytes: Uint8Array, position: number): number {
  return (bytes[position]! | (bytes[position + 1]! << 8) | (bytes[position + 2]! << 16) | (bytes[position + 3]! << 24)) >>> 0;
}

/** Length of the common prefix found by the last compareRange() call. */
export let matchedLength = 0;

/**
 * memcmp of bytes[start, start + length) against `key`, skipping the first `from` bytes, which
 * the caller knows to be equal. Sets matchedLength.
 */
export function compareRange(bytes: Uint8Array, start: number, length: number, key: Uint8Array, from = 0): number {
  const common = length < key.length ? length : key.length;
  for (let i = from; i < common; i++) {
    const difference = bytes[start + i]! - key[i]!;
    if (difference !== 0) {
      matchedLength = i;
      return difference;
    }
  }
  matchedLength = common;
  return length - key.length;
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

export function blockKindName(kind: number): string {
  return BLOCK_KIND_NAMES[kind] ?? `unknown (${kind})`;
}

// ---------------------------------------------------------------------------------------------
// Block trailer.

/**
 * Verifies the block whose contents start at `buffer[start]` and span `size` bytes, followed by
 * its trailer; `fileOffset` is where the block starts in the file (for the error). Returns a view
 * of the contents (no copy). Throws CorruptionError on a short read, a wrong kind or a bad CRC.
 */
export function verifyBlock(
  buffer: Uint8Array,
  start: number,
  handle: BlockHandle,
  kind: BlockKind,
  path: string,
): Uint8Array {
  const name = blockKindName(kind);
  const end = start + handle.size;
  if (end + BLOCK_TRAILER_BYTES > buffer.length) {
    throw new CorruptionError(`${name} block is truncated: ${handle.size} bytes and trailer do not fit`, path, handle.offset);
  }
  const storedKind = buffer[end]!;
  const stored = unmaskCrc(readU32(buffer, end + 1));
  const computed = crc32c(buffer.subarray(start, end + 1));
  if (stored !== computed) {
    throw new CorruptionError(
      `${name} block checksum mismatch: stored ${hex32(stored)}, computed ${hex32(computed)}`,
      path,
      handle.offset,
    );
  }
  if (storedKind !== kind) {
    throw new CorruptionError(`block kind is ${blockKindName(storedKind)}, expected ${name}`, path, handle.offset);
  }
  return buffer.subarray(start, end);
}

// ---------------------------------------------------------------------------------------------
// Footer.

const FOOTER_CHECKED_BYTES = 52;

export function encodeFooter(footer: Footer): Uint8Array {
  const out = new ByteWriter(FOOTER_BYTES);
  for (const handle of [footer.index, footer.filter, footer.properties]) {
    out.u64(handle.offset);
    out.u64(handle.size);
  }
  out.u32(footer.formatVersion);
  out.u32(maskCrc(crc32c(out.view())));
  out.bytes(SSTABLE_MAGIC);
  return out.finish();
}

/**
 * Decodes the footer, the last FOOTER_BYTES of a file of `fileBytes` bytes. Checks the magic, the
 * footer CRC, the version, and that every handle lies between the data blocks and the footer.
 */
export function decodeFooter(bytes: Uint8Array, fileBytes: number, path: string): Footer {
  const footerOffset = fileBytes - FOOTER_BYTES;
  const fail = (detail: string): CorruptionError => new CorruptionError(`footer ${detail}`, path, footerOffset);
  if (bytes.length !== FOOTER_BYTES) throw fail(`is ${bytes.length} bytes, expected ${FOOTER_BYTES}`);
  for (let i = 0; i < SSTABLE_MAGIC.length; i++) {
    if (bytes[FOOTER_CHECKED_BYTES + 4 + i] !== SSTABLE_MAGIC[i]) throw fail("has a wrong magic number: not an SSTable");
  }
  const stored = unmaskCrc(readU32(bytes, FOOTER_CHECKED_BYTES));
  const computed = crc32c(bytes.subarray(0, FOOTER_CHECKED_BYTES));
  if (stored !== computed) throw fail(`checksum mismatch: stored ${hex32(stored)}, computed ${hex32(computed)}`);
  const reader = new ByteReader(bytes);
  const handles: BlockHandle[] = [];
  for (let i = 0; i < 3; i++) {
    let offset: number;
    let size: number;
    try {
      offset = reader.u64();
      size = reader.u64();
    } catch (cause) {
      throw fail(`has an unreadable block handle: ${String(cause)}`);
    }
    if (offset + size + BLOCK_TRAILER_BYTES > footerOffset) {
      throw fail(`block handle (offset ${offset}, size ${size}) runs past the footer at ${footerOffset}`);
    }
    handles.push({ offset, size });
  }
  const formatVersion = reader.u32();
  if (formatVersion !== SSTABLE_FORMAT_VERSION) {
    throw fail(`has format version ${formatVersion}, this build reads version ${SSTABLE_FORMAT_VERSION}`);
  }
  const [index, filter, properties] = handles as [BlockHandle, BlockHandle, BlockHandle];
  return { index, filter, properties, formatVersion };
}

// ---------------------------------------------------------------------------------------------
// Data blocks.
//
//   dataBlock := entry+ restart:u32{restartCount} restartCount:u32
//   entry     := shared:varint unshared:varint payloadLength:varint sequence:varint kind:u8
//                keySuffix:u8[unshared] payload:u8[payloadLength]

/** Most bytes encodeEntry() writes for a record: four varints, kind, key and payload. */
export function entryBytesMax(record: StoredRecord): number {
  return 4 * 8 + 1 + record.key.length + record.payload.length;
}

/** Writes `value` (an integer in 0..2^53 - 1) as a varint at target[position]; returns the end. */
function writeVarint(target: Uint8Array, position: number, value: number): number {
  while (value >= 0x80) {
    target[position++] = (value & 0x7f) | 0x80; // & keeps the low bits exact for any safe integer
    value = value < 0x80000000 ? value >>> 7 : Math.floor(value / 0x80);
  }
  target[position++] = value;
  return position;
}

function copyInto(target: Uint8Array, position: number, source: Uint8Array, from: number): number {
  const length = source.length - from;
  if (length < 32) {
    for (let i = 0; i < length; i++) target[position + i] = source[from + i]!;
  } else {
    target.set(from === 0 ? source : source.subarray(from), position);
  }
  return position + length;
}

/**
 * Writes one data-block entry at target[position] and returns its end; `shared` bytes of
 * `record.key` equal the previous entry's key. REQUIRES: entryBytesMax(record) bytes of room.
 */
export function encodeEntry(target: Uint8Array, position: number, shared: number, record: StoredRecord): number {
  const key = record.key;
  const payload = record.payload;
  position = writeVarint(target, position, shared);
  position = writeVarint(target, position, key.length - shared);
  position = writeVarint(target, position, payload.length);
  position = writeVarint(target, position, record.sequence);
  target[position++] = record.kind;
  position = copyInto(target, position, key, shared);
  return copyInto(target, position, payload, 0);
}

/** Writes the restart array and its count at target[position] (4 · (restarts + 1) bytes); returns the end. */
export function encodeRestarts(target: Uint8Array, position: number, restarts: readonly number[]): number {
  for (const offset of restarts) position = writeU32(target, position, offset);
  return writeU32(target, position, restarts.length);
}

function writeU32(target: Uint8Array, position: number, value: number): number {
  target[position] = value;
  target[position + 1] = value >>> 8;
  target[position + 2] = value >>> 16;
  target[position + 3] = value >>> 24;
  return position + 4;
}

/**
 * Writes the trailer of the block whose contents are target[contentsStart, position) at
 * target[position] (BLOCK_TRAILER_BYTES bytes); returns the end.
 */
export function encodeBlockTrailer(target: Uint8Array, contentsStart: number, position: number, kind: BlockKind): number {
  target[position++] = kind;
  const crc = crc32c(target.subarray(contentsStart, position));
  return writeU32(target, position, maskCrc(crc));
}

// ---------------------------------------------------------------------------------------------
// Index block.
//
//   indexBlock := count:varint indexEntry{count}
//   indexEntry := shared:varint unshared:varint keySuffix:u8[unshared] offset:varint size:varint
//
// Entry i's key (the separator) is >= every key of data block i and <= every key of block i + 1,
// and < the first key of block i + 1 unless one key's records continue across the boundary.

/** Index entries as the writer collects them. */
export interface IndexEntries {
  readonly separators: Uint8Array[];
  readonly offsets: number[];
  readonly sizes: number[];
}

/**
 * The decoded index a reader keeps in memory, flat for cache locality: separator i is
 * `separatorBytes[separatorStarts[i], separatorStarts[i + 1])`; block i's handle is
 * (offsets[i], sizes[i]).
 */
export interface TableIndex {
  readonly count: number;
  readonly separatorBytes: Uint8Array;
  readonly separatorStarts: Uint32Array;
  readonly offsets: Float64Array;
  readonly sizes: Float64Array;
}

export function encodeIndex(entries: IndexEntries, out: ByteWriter): void {
  out.varint(entries.separators.length);
  let previous: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < entries.separators.length; i++) {
    const key = entries.separators[i]!;
    const shared = commonPrefixLength(previous, key);
    out.varint(shared);
    out.varint(key.length - shared);
    out.bytes(key.subarray(shared));
    out.varint(entries.offsets[i]!);
    out.varint(entries.sizes[i]!);
    previous = key;
  }
}

/**
 * Index of the first separator >= `key` (index.count if none): the only data block where records
 * of `key` can start. A binary search that skips the prefix every remaining candidate is known to
 * share with `key` (the smaller of its common prefixes with the two bounds).
 */
export function findSeparator(index: TableIndex, key: Uint8Array): number {
  const bytes = index.separatorBytes;
  const starts = index.separatorStarts;
  let low = 0;
  let high = index.count;
  let matchedLow = 0;
  let matchedHigh = 0;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const start = starts[middle]!;
    const from = matchedLow < matchedHigh ? matchedLow : matchedHigh;
    if (compareRange(bytes, start, starts[middle + 1]! - start, key, from) < 0) {
      low = middle + 1;
      matchedLow = matchedLength;
    } else {
      high = middle;
      matchedHigh = matchedLength;
    }
  }
  return low;
}

/** Decodes a verified index block; `dataEnd` bounds every data block handle (the first meta block's offset). */
export function decodeIndex(contents: Uint8Array, dataEnd: number, path: string, blockOffset: number): TableIndex {
  const fail = (detail: string): CorruptionError => new CorruptionError(`index block ${detail}`, path, blockOffset);
  const limit = contents.length;
  const count = readVarint(contents, 0, limit);
  let position = varintEnd;
  if (position < 0 || count > limit) throw fail("has a malformed entry count");
  const keys = new ByteWriter(Math.max(64, limit));
  const separatorStarts = new Uint32Array(count + 1);
  const offsets = new Float64Array(count);
  const sizes = new Float64Array(count);
  let previousStart = 0;
  let expectedOffset = 0;
  for (let i = 0; i < count; i++) {
    const shared = readVarint(contents, position, limit);
    const unshared = readVarint(contents, varintEnd, limit);
    position = varintEnd;
    const previousLength = keys.length - previousStart;
    if (position < 0 || shared > previousLength || position + unshared > limit) throw fail(`entry ${i} is malformed`);
    const start = keys.length;
    keys.bytes(keys.view().slice(previousStart, previousStart + shared));
    keys.bytes(contents.subarray(position, position + unshared));
    const offset = readVarint(contents, position + unshared, limit);
    const size = readVarint(contents, varintEnd, limit);
    position = varintEnd;
    if (position < 0) throw fail(`entry ${i} has a malformed block handle`);
    if (offset !== expectedOffset || offset + size + BLOCK_TRAILER_BYTES > dataEnd) {
      throw fail(`entry ${i} has block handle (offset ${offset}, size ${size}), expected offset ${expectedOffset} below ${dataEnd}`);
    }
    separatorStarts[i] = start;
    offsets[i] = offset;
    sizes[i] = size;
    expectedOffset = offset + size + BLOCK_TRAILER_BYTES;
    previousStart = start;
  }
  separatorStarts[count] = keys.length;
  if (position !== limit) throw fail(`has ${limit - position} trailing bytes`);
  if (expectedOffset !== dataEnd) throw fail(`covers data up to ${expectedOffset}, but data blocks end at ${dataEnd}`);
  return { count, separatorBytes: keys.finish(), separatorStarts, offsets, sizes };
}

// ---------------------------------------------------------------------------------------------
// Properties block: property* where property := tag:varint length:varint value:u8[length];
// numbers are a varint inside the value, keys are the raw bytes.

export function encodeProperties(properties: TableProperties, out: ByteWriter): void {
  const scratch = new ByteWriter(16);
  const numbers: [number, number][] = [
    [PropertyTag.recordCount, properties.recordCount],
    [PropertyTag.keyCount, properties.keyCount],
    [PropertyTag.sequenceMin, properties.sequenceMin],
    [PropertyTag.sequenceMax, properties.sequenceMax],
    [PropertyTag.dataBlockCount, properties.dataBlockCount],
    [PropertyTag.dataBytes, properties.dataBytes],
    [PropertyTag.rawBytes, properties.rawBytes],
    [PropertyTag.bloomBitsPerKey, properties.bloomBitsPerKey],
    [PropertyTag.createdAtMs, properties.createdAtMs],
  ];
  for (const [tag, value] of numbers) {
    scratch.reset();
    scratch.varint(value);
    out.varint(tag);
    out.varint(scratch.length);
    out.bytes(scratch.view());
  }
  for (const [tag, key] of [
    [PropertyTag.smallestKey, properties.smallestKey],
    [PropertyTag.largestKey, properties.largestKey],
  ] as const) {
    out.varint(tag);
    out.varint(key.length);
    out.bytes(key);
  }
}

const REQUIRED_NUMBER_TAGS = [
  PropertyTag.recordCount,
  PropertyTag.keyCount,
  PropertyTag.sequenceMin,
  PropertyTag.sequenceMax,
  PropertyTag.dataBlockCount,
  PropertyTag.dataBytes,
] as const;

/** Decodes a verified properties block. `bloomBitsPerKey` is a whole number in format version 1. */
export function decodeProperties(contents: Uint8Array, formatVersion: number, path: string, blockOffset: number): TableProperties {
  const fail = (detail: string): CorruptionError => new CorruptionError(`properties block ${detail}`, path, blockOffset);
  const numbers = new Map<number, number>();
  const keys = new Map<number, Uint8Array>();
  const limit = contents.length;
  let position = 0;
  while (position < limit) {
    const tag = readVarint(contents, position, limit);
    const length = readVarint(contents, varintEnd, limit);
    position = varintEnd;
    if (position < 0 || position + length > limit) throw fail(`has a malformed property at ${position}`);
    if (tag === PropertyTag.smallestKey || tag === PropertyTag.largestKey) {
      keys.set(tag, contents.slice(position, position + length));
    } else {
      const value = readVarint(contents, position, position + length);
      if (varintEnd !== position + length) throw fail(`property ${tag} is not one varint`);
      numbers.set(tag, value);
    }
    position += length;
  }
  for (const tag of REQUIRED_NUMBER_TAGS) if (!numbers.has(tag)) throw fail(`lacks property ${tag}`);
  const smallestKey = keys.get(PropertyTag.smallestKey);
  const largestKey = keys.get(PropertyTag.largestKey);
  if (smallestKey === undefined || largestKey === undefined) throw fail("lacks the smallest or largest key");
  return {
    formatVersion,
    recordCount: numbers.get(PropertyTag.recordCount)!,
    keyCount: numbers.get(PropertyTag.keyCount)!,
    smallestKey,
    largestKey,
    sequenceMin: numbers.get(PropertyTag.sequenceMin)!,
    sequenceMax: numbers.get(PropertyTag.sequenceMax)!,
    dataBlockCount: numbers.get(PropertyTag.dataBlockCount)!,
    dataBytes: numbers.get(PropertyTag.dataBytes)!,
    rawBytes: numbers.get(PropertyTag.rawBytes) ?? 0,
    bloomBitsPerKey: numbers.get(PropertyTag.bloomBitsPerKey) ?? 0,
    createdAtMs: numbers.get(PropertyTag.createdAtMs) ?? 0,
  };
}

// ---------------------------------------------------------------------------------------------
// Separator keys for the index.

export function commonPrefixLength(a: Uint8Array, b: Uint8Array): number {
  const length = a.length < b.length ? a.length : b.length;
  let i = 0;
  while (i < length && a[i] === b[i]) i++;
  return i;
}

/**
 * A short key s with last <= s <= next, and s < next whenever last < next (LevelDB's
 * FindShortestSeparator). REQUIRES: last <= next. Returns a fresh array.
 */
export function shortSeparator(last: Uint8Array, next: Uint8Array): Uint8Array {
  const prefix = commonPrefixLength(last, next);
  if (prefix < last.length && prefix < next.length) {
    const byte = last[prefix]!;
    if (byte < 0xff && byte + 1 < next[prefix]!) {
      const separator = last.slice(0, prefix + 1);
      separator[prefix] = byte + 1;
      return separator;
    }
  }
  return last.slice();
}

/** A short key s >= key (LevelDB's FindShortSuccessor). Returns a fresh array. */
export function shortSuccessor(key: Uint8Array): Uint8Array {
  for (let i = 0; i < key.length; i++) {
    const byte = key[i]!;
    if (byte !== 0xff) {
      const successor = key.slice(0, i + 1);
      successor[i] = byte + 1;
      return successor;
    }
  }
  return key.slice();
}
