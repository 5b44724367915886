/**
 * Reads a commit log back (format: log_format.ts, docs/formats/log.md), telling a torn tail (the
 * normal result of a crash during a write) from corruption (damage with good data after it).
 *
 * The rule, applied at the first damage D (a fragment failing a check, a non-zero trailer byte, a
 * header cut by the end of the file, or a fragment out of sequence):
 * - if a valid fragment exists after D, the log is corrupt: CorruptionError naming the file and D.
 *   Candidates are the fragment that D's length field points to (when that length fits D's block)
 *   and the start of every later block (a block always begins with a header in a sound log);
 * - otherwise D starts a torn tail: reading stops, the records before it are returned and
 *   `tornTail` says where and why.
 * A valid MIDDLE or LAST without its FIRST, or a FULL or FIRST inside an unfinished record, is
 * itself a valid fragment after the damage, so it is always corruption. Undecidable case: when
 * D's length field is damaged to point past the end of the file (or past its block) and D lies
 * in the last block, the fragments after D in that block cannot be located; D is then classified
 * as a torn tail, exactly as a write cut at D would be.
 */
import type { FileSystem } from "../io/file_system.ts";
import { crc32c, unmaskCrc } from "../util/crc32c.ts";
import { concatBytes } from "../util/bytes.ts";
import { CorruptionError } from "../util/errors.ts";
import {
  blockBytesLeft,
  FragmentType,
  fragmentTypeName,
  isFragmentType,
  LOG_BLOCK_BYTES,
  LOG_HEADER_BYTES,
  LOG_LENGTH_OFFSET,
  LOG_TYPE_OFFSET,
} from "./log_format.ts";

export interface TornTail {
  /** Where the unreadable tail begins: an unfinished record's first fragment, or the first bad byte. */
  readonly offset: number;
  readonly reason: string;
}

export interface LogReadResult {
  /** Logical records in write order; views into the file content read once (no copies). */
  readonly records: Uint8Array[];
  /** File offset of each record's first fragment (same indexes as `records`). */
  readonly recordOffsets: number[];
  /** Offset just past the last good record's last fragment; 0 when there is none. */
  readonly validBytes: number;
  /** Null when the log ends cleanly after a record (or inside a zero-filled block trailer). */
  readonly tornTail: TornTail | null;
}

/**
 * Reads the whole log at `path`: every good record, and the torn tail if any. Throws
 * CorruptionError on damage followed by valid data, IoError if the file cannot be read.
 */
export function readLog(fs: FileSystem, path: string): LogReadResult {
  const reader = new LogReader(fs.readFile(path), path);
  const records: Uint8Array[] = [];
  const recordOffsets: number[] = [];
  for (let record = reader.next(); record !== null; record = reader.next()) {
    records.push(record);
    recordOffsets.push(reader.recordOffset);
  }
  return { records, recordOffsets, validBytes: reader.validBytes, tornTail: reader.tornTail };
}

/**
 * Iterates the logical records of a log held in memory. `next()` returns records in order, then
 * null at the end (clean or torn); it throws CorruptionError as `readLog` describes.
 * Returned records are views into `bytes`, which the caller must not modify while they are used.
 */
export class LogReader {
  readonly #bytes: Uint8Array;
  readonly #path: string;
  #offset = 0;
  #recordOffset = -1;
  #validBytes = 0;
  #tornTail: TornTail | null = null;
  #done = false;

  constructor(bytes: Uint8Array, path: string) {
    this.#bytes = bytes;
    this.#path = path;
  }

  /** Offset of the first fragment of the record `next()` returned last; -1 before the first. */
  get recordOffset(): number {
    return this.#recordOffset;
  }

  /** Offset just past the last record returned so far. */
  get validBytes(): number {
    return this.#validBytes;
  }

  /** Set once `next()` has returned null because of a torn tail. */
  get tornTail(): TornTail | null {
    return this.#tornTail;
  }

  next(): Uint8Array | null {
    if (this.#done) return null;
    const bytes = this.#bytes;
    let recordStart = -1;
    let parts: Uint8Array[] = [];
    for (;;) {
      const offset = this.#offset;
      if (offset >= bytes.length) {
        return recordStart < 0 ? this.#finish(null) : this.#tail(recordStart, `log ends inside the record at ${recordStart}`);
      }
      const left = blockBytesLeft(offset);
      if (left < LOG_HEADER_BYTES) {
        const bad = firstNonZero(bytes, offset, Math.min(offset + left, bytes.length));
        if (bad >= 0) return this.#damage(bad, "non-zero byte in a block trailer", recordStart, -1);
        this.#offset = offset + left;
        continue;
      }
      const defect = fragmentDefect(bytes, offset);
      if (defect !== null) return this.#damage(offset, defect, recordStart, impliedNext(bytes, offset));
      const type = bytes[offset + LOG_TYPE_OFFSET]!;
      const payload = bytes.subarray(offset + LOG_HEADER_BYTES, offset + LOG_HEADER_BYTES + fragmentLength(bytes, offset));
      this.#offset = offset + LOG_HEADER_BYTES + payload.length;
      const startsRecord = type === FragmentType.full || type === FragmentType.first;
      if (startsRecord === (recordStart >= 0)) this.#outOfSequence(offset, type, recordStart);
      if (type === FragmentType.full) return this.#record(offset, payload);
      if (type === FragmentType.first) recordStart = offset;
      parts.push(payload);
      if (type === FragmentType.last) {
        const record = concatBytes(parts);
        parts = [];
        return this.#record(recordStart, record);
      }
    }
  }

  #record(start: number, record: Uint8Array): Uint8Array {
    this.#recordOffset = start;
    this.#validBytes = this.#offset;
    return record;
  }

  /** A valid fragment of the wrong type for its place: data follows the break, so this is corruption. */
  #outOfSequence(offset: number, type: number, recordStart: number): never {
    const name = fragmentTypeName(type);
    const detail = recordStart < 0
      ? `${name} fragment without a first fragment before it`
      : `${name} fragment inside the unfinished record at ${recordStart}`;
    throw new CorruptionError(detail, this.#path, offset);
  }

  /**
   * Damage at `at`: corruption if a valid fragment follows (at `next`, or at a later block start),
   * else a torn tail beginning at the unfinished record (if any) or at `at`.
   */
  #damage(at: number, reason: string, recordStart: number, next: number): null {
    if (validFragmentAfter(this.#bytes, at, next)) {
      throw new CorruptionError(`${reason}, with valid fragments after it`, this.#path, at);
    }
    const start = recordStart >= 0 ? recordStart : at;
    return this.#tail(start, start === at ? reason : `${reason} at ${at}, inside the record at ${start}`);
  }

  #tail(offset: number, reason: string): null {
    return this.#finish({ offset, reason });
  }

  #finish(tornTail: TornTail | null): null {
    this.#tornTail = tornTail;
    this.#done = true;
    return null;
  }
}

function fragmentLength(bytes: Uint8Array, offset: number): number {
  return bytes[offset + LOG_LENGTH_OFFSET]! | (bytes[offset + LOG_LENGTH_OFFSET + 1]! << 8);
}

function storedCrc(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}

/**
 * Why the fragment at `offset` is not valid, or null when it is. REQUIRES: `offset` is not in a
 * block trailer (at least a header's worth of its block is left).
 */
function fragmentDefect(bytes: Uint8Array, offset: number): string | null {
  if (offset + LOG_HEADER_BYTES > bytes.length) return "log ends inside a fragment header";
  const type = bytes[offset + LOG_TYPE_OFFSET]!;
  if (type === 0) return "fragment of reserved type 0 (zero-filled space)";
  if (!isFragmentType(type)) return `fragment of ${fragmentTypeName(type)}`;
  const length = fragmentLength(bytes, offset);
  const end = offset + LOG_HEADER_BYTES + length;
  if (length > blockBytesLeft(offset) - LOG_HEADER_BYTES) return `fragment length ${length} crosses the block end`;
  if (end > bytes.length) return `log ends inside a fragment of ${length} bytes`;
  const actual = crc32c(bytes.subarray(offset + LOG_TYPE_OFFSET, end));
  if (unmaskCrc(storedCrc(bytes, offset)) !== actual) return "fragment checksum mismatch";
  return null;
}

/** Where the fragment after the one at `offset` would start if its length field is right; -1 if unknown. */
function impliedNext(bytes: Uint8Array, offset: number): number {
  if (offset + LOG_HEADER_BYTES > bytes.length) return -1;
  const length = fragmentLength(bytes, offset);
  if (length > blockBytesLeft(offset) - LOG_HEADER_BYTES) return -1;
  return offset + LOG_HEADER_BYTES + length;
}

/** Whether a valid fragment starts at `next` (if known) or at any block start after `at`. */
function validFragmentAfter(bytes: Uint8Array, at: number, next: number): boolean {
  if (next >= 0 && next < bytes.length && blockBytesLeft(next) >= LOG_HEADER_BYTES) {
    if (fragmentDefect(bytes, next) === null) return true;
  }
  for (let block = (Math.floor(at / LOG_BLOCK_BYTES) + 1) * LOG_BLOCK_BYTES; block < bytes.length; block += LOG_BLOCK_BYTES) {
    if (fragmentDefect(bytes, block) === null) return true;
  }
  return false;
}

/** Index of the first non-zero byte in `bytes[start, end)`, or -1. */
function firstNonZero(bytes: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return i;
  return -1;
}
