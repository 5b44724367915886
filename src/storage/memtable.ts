/**
 * The memtable: a skiplist of records laid out in one SharedArrayBuffer arena. No JS object per
 * entry, bounded bytes, records ordered by (key ascending as unsigned bytes, sequence descending).
 *
 * Threads. One thread writes (the store's owner thread): `create`, `insert`, `freeze`. Once frozen,
 * the buffer is handed zero-copy (postMessage / piscina) to another thread, which calls `attach`
 * and only reads. The postMessage hand-off orders every write before the reader's first read, so
 * plain (non-Atomics) accesses suffice; reading while another thread still inserts is not
 * supported, which is why `attach` refuses a buffer that is not frozen. Everything a reader needs
 * lives in the arena header; the JS object holds only views and the writer's PRNG state.
 *
 * Layout idea. Level 0 of the skiplist is a linked list of record nodes (key and payload inline)
 * growing up from the front of the arena. A record of height >= 2 also gets a tower, allocated
 * from the back of the arena downwards, holding its links at levels 1..height-1 and a copy of its
 * key and sequence. Searches descend through the towers, which are dense (about a quarter of the
 * records, no payloads) and so stay in cache, and touch only a few record nodes at level 0; a
 * single interleaved layout costs a cache and TLB miss at nearly every step of a large memtable.
 * The arena is full when the two regions would meet.
 *
 * Arena layout (integers are little-endian Int32 words; offsets are bytes from the start of the
 * buffer, 4-byte aligned; offset 0 is the header, so a link of 0 means "none"). The arena is
 * append-only: a written record or tower is never moved, and only its links ever change.
 *
 *   Header, 64 bytes:
 *     0  magic             0x4d544c4d (bytes 4d 4c 54 4d), marks a memtable arena
 *     4  formatVersion     1
 *     8  arenaBytes        total buffer size (a multiple of 8, at most limits.memtableBytesMax)
 *    12  frontEnd          first free byte of the record region (grows up)
 *    16  backStart         first used byte of the tower region (grows down from arenaBytes)
 *    20  entryCount        records inserted
 *    24  height            skiplist levels in use, 1..12 (the head tower always has 12)
 *    28  frozen            0 while writable, 1 once frozen (never goes back)
 *    32  headRecord        offset of the head record (64): its next is the first record
 *    36  headTower         offset of the head tower (88): links at levels 1..11
 *    40  sequenceMinLow    smallest sequence inserted, low 32 bits (0 while empty)
 *    44  sequenceMinHigh   ... high 21 bits
 *    48  sequenceMaxLow    largest sequence inserted, low 32 bits (0 while empty)
 *    52  sequenceMaxHigh   ... high 21 bits
 *    56  reserved          two words, zero
 *   usedBytes = frontEnd + (arenaBytes - backStart), header, head record and head tower included.
 *
 *   Record node (front region):
 *     +0   next             offset of the next record at level 0, 0 at the end
 *     +4   kind             RecordKind (0 only in the head record)
 *     +8   keyLength        1..limits.storeKeyBytesMax (0 only in the head record)
 *     +12  payloadLength    0..limits.recordPayloadBytesMax
 *     +16  sequenceLow      low 32 bits of the sequence
 *     +20  sequenceHigh     high 21 bits (sequence = high * 2^32 + low, at most 2^53 - 1)
 *     +24  key bytes, then payload bytes, then zero padding to 4 bytes
 *
 *   Tower (back region; only for records of height >= 2, and the head tower):
 *     +0   record           offset of its record node
 *     +4   height           2..12
 *     +8   keyLength        as in the record
 *     +12  sequenceLow      as in the record
 *     +16  sequenceHigh     as in the record
 *     +20  next[height - 1] offset of the next tower at levels 1..height-1, 0 at the end
 *     +20 + 4 * (height - 1)  copy of the key bytes, then zero padding to 4 bytes
 *
 *   Heights come from a seeded PRNG (mulberry32): level i is kept with probability 1/4 per
 *   level, so a given seed and insert sequence give byte-identical arenas.
 *
 * Returned records are views, not copies: `key` and `payload` of a StoredRecord are Uint8Array
 * views into the arena. They stay valid and unchanged for as long as they are referenced (the
 * arena is append-only and never reused), but they keep the whole arena alive and must not be
 * written to. Views make lookups and flush iteration cheap; the engine copies what it keeps
 * beyond the memtable's life.
 */
import { assert } from "../util/assert.ts";
import { describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import { isRecordKind, RecordKind, SEQUENCE_MAX, type StoredRecord } from "./record.ts";
import { addHashes, emptyBloomFilter, keyHashes, mayContainHashes, type KeyHashes } from "./bloom.ts";

/**
 * The writer's key filter: one bit per this many arena bytes (a 64 MiB arena: 512 KiB), probed 5
 * times per key. At the 150-odd bytes a 16-byte key with a 100-byte value takes in the arena that
 * is about 10 bits per key, 1% false positives; smaller records get fewer bits each.
 */
const FILTER_ARENA_BYTES_PER_BIT = 16;
const FILTER_PROBES = 5;
/** Scratch for insert's hashing (inserts are synchronous, one at a time per thread). */
const insertHashes: KeyHashes = { first: 0, second: 0 };

const MAGIC = 0x4d544c4d;
const FORMAT_VERSION = 1;

// Header word indexes.
const WORD_MAGIC = 0;
const WORD_FORMAT_VERSION = 1;
const WORD_ARENA_BYTES = 2;
const WORD_FRONT_END = 3;
const WORD_BACK_START = 4;
const WORD_ENTRY_COUNT = 5;
const WORD_HEIGHT = 6;
const WORD_FROZEN = 7;
const WORD_HEAD_RECORD = 8;
const WORD_HEAD_TOWER = 9;
const WORD_SEQUENCE_MIN_LOW = 10;
const WORD_SEQUENCE_MAX_LOW = 12;
const HEADER_BYTES = 64;

// Record node word indexes, relative to the record's first word.
const RECORD_NEXT = 0;
const RECORD_KIND = 1;
const RECORD_KEY_LENGTH = 2;
const RECORD_PAYLOAD_LENGTH = 3;
const RECORD_SEQUENCE_LOW = 4;
const RECORD_FIXED_BYTES = 24;

// Tower word indexes, relative to the tower's first word. TOWER_NEXT + level - 1 is the link at `level`.
const TOWER_RECORD = 0;
const TOWER_HEIGHT = 1;
const TOWER_KEY_LENGTH = 2;
const TOWER_SEQUENCE_LOW = 3;
const TOWER_NEXT = 5;
const TOWER_FIXED_BYTES = 20;

const HEIGHT_MAX = 12;
const HEAD_RECORD = HEADER_BYTES;
const HEAD_TOWER = HEAD_RECORD + RECORD_FIXED_BYTES;
const FIRST_RECORD = HEAD_TOWER + TOWER_FIXED_BYTES + 4 * (HEIGHT_MAX - 1);
const TWO_TO_32 = 2 ** 32;
const SEED_DEFAULT = 0x5eed_1007;

function recordNodeBytes(keyLength: number, payloadLength: number): number {
  return (RECORD_FIXED_BYTES + keyLength + payloadLength + 3) & ~3;
}

/** Bytes of the tower of a record of `height` (0 for height 1, which has no tower). */
function towerBytes(height: number, keyLength: number): number {
  return height < 2 ? 0 : (TOWER_FIXED_BYTES + 4 * (height - 1) + keyLength + 3) & ~3;
}

/** Writes a (low, high) uint32 word pair holding an integer up to 2^53 - 1. */
function writeWordPair(words: Int32Array, word: number, value: number): void {
  words[word] = value >>> 0;
  words[word + 1] = Math.floor(value / TWO_TO_32);
}

export class Memtable {
  readonly buffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;
  /** Writer only: the last tower before the sought position at levels 1..11, filled by #seek (index 0 unused). */
  readonly #predecessors = new Int32Array(HEIGHT_MAX);
  /** Writer only: mulberry32 state for heights. */
  #randomState: number;
  /**
   * Writer only: a Bloom filter of every key inserted, so that a point read of a key this
   * memtable lacks (most keys, once there are tables) skips the skiplist search. Kept beside the
   * arena, not in it: the arena format and the threads that attach it are unchanged.
   */
  #filter: Uint8Array | undefined;

  private constructor(buffer: SharedArrayBuffer, seed: number) {
    this.buffer = buffer;
    this.#words = new Int32Array(buffer);
    this.#bytes = new Uint8Array(buffer);
    this.#randomState = seed | 0;
  }

  /**
   * Allocates an empty memtable of `arenaBytes` (a multiple of 8 within limits.memtableBytesMin
   * and limits.memtableBytesMax). `seed` (a uint32, default a constant) drives heights only.
   * The returned memtable is writable by the calling thread.
   */
  /**
   * A new, empty memtable. With `reuse`, the arena of a memtable that is no longer read anywhere
   * is zeroed and used again instead of allocating (bounded memory under sustained writes).
   * REQUIRES: nothing reads the reused arena's old records any more; its size is `arenaBytes`.
   */
  static create(options: { arenaBytes: number; seed?: number; reuse?: SharedArrayBuffer | undefined }): Memtable {
    const { arenaBytes, seed = SEED_DEFAULT, reuse } = options;
    if (
      !Number.isInteger(arenaBytes) ||
      arenaBytes % 8 !== 0 ||
      arenaBytes < limits.memtableBytesMin ||
      arenaBytes > limits.memtableBytesMax
    ) {
      throw new LoomRangeError(
        `memtable create failed: arenaBytes is ${describe(arenaBytes)}, must be a multiple of 8 from ${limits.memtableBytesMin} to ${limits.memtableBytesMax}`,
      );
    }
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) {
      throw new LoomRangeError(`memtable create failed: seed is ${describe(seed)}, must be an integer from 0 to 4294967295`);
    }
    if (reuse !== undefined && reuse.byteLength !== arenaBytes) {
      throw new LoomRangeError(`memtable create failed: reused arena is ${reuse.byteLength} bytes, arenaBytes is ${arenaBytes}`);
    }
    if (reuse !== undefined) new Uint8Array(reuse).fill(0);
    const memtable = new Memtable(reuse ?? new SharedArrayBuffer(arenaBytes), seed);
    memtable.#filter = emptyBloomFilter(arenaBytes / FILTER_ARENA_BYTES_PER_BIT, FILTER_PROBES);
    const words = memtable.#words;
    words[WORD_MAGIC] = MAGIC;
    words[WORD_FORMAT_VERSION] = FORMAT_VERSION;
    words[WORD_ARENA_BYTES] = arenaBytes;
    words[WORD_FRONT_END] = FIRST_RECORD;
    words[WORD_BACK_START] = arenaBytes;
    words[WORD_HEIGHT] = 1;
    words[WORD_HEAD_RECORD] = HEAD_RECORD;
    words[WORD_HEAD_TOWER] = HEAD_TOWER;
    words[(HEAD_TOWER >> 2) + TOWER_RECORD] = HEAD_RECORD;
    words[(HEAD_TOWER >> 2) + TOWER_HEIGHT] = HEIGHT_MAX;
    return memtable;
  }

  /**
   * A read-only view of a frozen memtable's arena, for a thread that received `buffer` by
   * postMessage. Throws LoomTypeError if the buffer is not a frozen memtable arena.
   */
  static attach(buffer: SharedArrayBuffer): Memtable {
    if (!(buffer instanceof SharedArrayBuffer)) {
      throw new LoomTypeError(`memtable attach failed: buffer is ${describe(buffer)}, expected a SharedArrayBuffer`);
    }
    if (buffer.byteLength < FIRST_RECORD || buffer.byteLength % 8 !== 0) {
      throw new LoomTypeError(`memtable attach failed: buffer of ${buffer.byteLength} bytes is not a memtable arena`);
    }
    const words = new Int32Array(buffer, 0, HEADER_BYTES >> 2);
    if (words[WORD_MAGIC] !== MAGIC || words[WORD_FORMAT_VERSION] !== FORMAT_VERSION) {
      throw new LoomTypeError(
        `memtable attach failed: buffer is not a memtable arena of format ${FORMAT_VERSION} (magic ${words[WORD_MAGIC]}, format ${words[WORD_FORMAT_VERSION]})`,
      );
    }
    const consistent =
      words[WORD_ARENA_BYTES] === buffer.byteLength &&
      words[WORD_HEAD_RECORD] === HEAD_RECORD &&
      words[WORD_HEAD_TOWER] === HEAD_TOWER &&
      words[WORD_FRONT_END]! <= words[WORD_BACK_START]!;
    if (!consistent) {
      throw new LoomTypeError(`memtable attach failed: header of a ${buffer.byteLength}-byte buffer is inconsistent`);
    }
    if (words[WORD_FROZEN] !== 1) {
      throw new LoomTypeError("memtable attach failed: memtable is not frozen, only a frozen memtable may be read by another thread");
    }
    return new Memtable(buffer, SEED_DEFAULT);
  }

  /** Largest arena bytes one insert of these lengths can take (a record of the greatest height). */
  static recordBytesMax(keyLength: number, payloadLength: number): number {
    return recordNodeBytes(keyLength, payloadLength) + towerBytes(HEIGHT_MAX, keyLength);
  }

  /** Smallest arena bytes one insert of these lengths can take (a record of height 1). */
  static recordBytesMin(keyLength: number, payloadLength: number): number {
    return recordNodeBytes(keyLength, payloadLength);
  }

  get frozen(): boolean {
    return this.#words[WORD_FROZEN] === 1;
  }

  get entryCount(): number {
    return this.#words[WORD_ENTRY_COUNT]!;
  }

  /** Arena bytes in use, header and head nodes included; never more than arenaBytes. */
  get usedBytes(): number {
    const words = this.#words;
    return words[WORD_FRONT_END]! + words[WORD_ARENA_BYTES]! - words[WORD_BACK_START]!;
  }

  get arenaBytes(): number {
    return this.#words[WORD_ARENA_BYTES]!;
  }

  /** Smallest sequence inserted; 0 while the memtable is empty. */
  get sequenceMin(): number {
    return this.#wordPair(WORD_SEQUENCE_MIN_LOW);
  }

  /** Largest sequence inserted; 0 while the memtable is empty. */
  get sequenceMax(): number {
    return this.#wordPair(WORD_SEQUENCE_MAX_LOW);
  }

  /** Makes the memtable read-only for good. Idempotent. Only the writing thread calls it. */
  freeze(): void {
    this.#words[WORD_FROZEN] = 1;
  }

  /**
   * Inserts a record; returns false, changing nothing (PRNG state included), if the arena has no
   * room for it. Copies `key` and `payload` into the arena; the caller keeps ownership of both.
   * Throws LoomTypeError / LoomRangeError for malformed arguments.
   * REQUIRES: the calling thread created this memtable, it is not frozen, and (key, sequence) is
   * not already present (both are checked: a violation is an AssertionError, a bug in the caller).
   */
  insert(key: Uint8Array, sequence: number, kind: RecordKind, payload: Uint8Array): boolean {
    validateInsert(key, sequence, kind, payload);
    assert(!this.frozen, "memtable insert failed: memtable is frozen");
    const words = this.#words;
    const randomState = this.#randomState;
    const height = this.#randomHeight();
    const record = words[WORD_FRONT_END]!;
    const recordBytes = recordNodeBytes(key.length, payload.length);
    const tower = words[WORD_BACK_START]! - towerBytes(height, key.length);
    if (record + recordBytes > tower) {
      this.#randomState = randomState;
      return false;
    }
    const predecessor = this.#seek(key, sequence);
    const successor = words[(predecessor >> 2) + RECORD_NEXT]!;
    assert(
      successor === 0 || this.#compareRecord(successor, key, sequence) !== 0,
      `memtable insert failed: sequence ${sequence} is already present for this key`,
    );
    this.#writeRecord({ record, key, sequence, kind, payload });
    words[(record >> 2) + RECORD_NEXT] = successor;
    words[(predecessor >> 2) + RECORD_NEXT] = record;
    words[WORD_FRONT_END] = record + recordBytes;
    if (height > 1) {
      this.#writeTower({ tower, record, height, key, sequence });
      this.#linkTower(tower, height);
      words[WORD_BACK_START] = tower;
    }
    this.#noteSequence(sequence);
    words[WORD_ENTRY_COUNT] = words[WORD_ENTRY_COUNT]! + 1;
    if (this.#filter !== undefined) addHashes(this.#filter, keyHashes(key, insertHashes));
    return true;
  }

  /**
   * Every record of `key`, newest first; an empty array if there are none. Views, see above. With
   * `untilPut`, stops after the newest put record: what a read needs, since a put replaces
   * everything older (a key written thousands of times holds thousands of records here).
   */
  recordsFor(key: Uint8Array, untilPut = false): StoredRecord[] {
    validateKey("recordsFor", key);
    const words = this.#words;
    const out: StoredRecord[] = [];
    let record = words[(this.#seek(key, Infinity) >> 2) + RECORD_NEXT]!;
    while (record !== 0 && this.#compareKey(record + RECORD_FIXED_BYTES, words[(record >> 2) + RECORD_KEY_LENGTH]!, key) === 0) {
      out.push(this.#recordAt(record));
      if (untilPut && words[(record >> 2) + RECORD_KIND] === RecordKind.put) break;
      record = words[(record >> 2) + RECORD_NEXT]!;
    }
    return out;
  }

  /**
   * False when no record of the key (by the hashes bloom.keyHashes computed) was ever inserted:
   * a point read may skip this memtable. True may be a false positive, and always for a memtable
   * attached from another thread (it has no filter).
   */
  mayContain(hashes: KeyHashes): boolean {
    return this.#filter === undefined || mayContainHashes(this.#filter, hashes);
  }

  /** The newest record of `key`, or undefined. Allocates only the result (record and two views). */
  newest(key: Uint8Array): StoredRecord | undefined {
    validateKey("newest", key);
    const words = this.#words;
    const record = words[(this.#seek(key, Infinity) >> 2) + RECORD_NEXT]!;
    if (record === 0 || this.#compareKey(record + RECORD_FIXED_BYTES, words[(record >> 2) + RECORD_KEY_LENGTH]!, key) !== 0) {
      return undefined;
    }
    return this.#recordAt(record);
  }

  /**
   * Records in (key ascending, sequence descending) order, from the first record whose key is
   * >= `start`, or from the first record. On the writing thread, records inserted during the
   * iteration may or may not be seen, but the order is never broken.
   */
  records(start?: Uint8Array): IterableIterator<StoredRecord> {
    if (start !== undefined) validateKey("records", start);
    const before = start === undefined ? HEAD_RECORD : this.#seek(start, Infinity);
    return this.#recordsFrom(this.#words[(before >> 2) + RECORD_NEXT]!);
  }

  *#recordsFrom(first: number): Generator<StoredRecord, void, undefined> {
    const words = this.#words;
    for (let record = first; record !== 0; record = words[(record >> 2) + RECORD_NEXT]!) {
      yield this.#recordAt(record);
    }
  }

  #recordAt(record: number): StoredRecord {
    const words = this.#words;
    const word = record >> 2;
    const keyLength = words[word + RECORD_KEY_LENGTH]!;
    const keyOffset = record + RECORD_FIXED_BYTES;
    return {
      key: new Uint8Array(this.buffer, keyOffset, keyLength),
      sequence: this.#wordPair(word + RECORD_SEQUENCE_LOW),
      kind: words[word + RECORD_KIND] as RecordKind,
      payload: new Uint8Array(this.buffer, keyOffset + keyLength, words[word + RECORD_PAYLOAD_LENGTH]!),
    };
  }

  /** The integer stored as (low, high) uint32 words at `word` and `word + 1`. */
  #wordPair(word: number): number {
    return this.#words[word + 1]! * TWO_TO_32 + (this.#words[word]! >>> 0);
  }

  /**
   * Compares the `storedLength` key bytes at arena offset `offset` with `key` without
   * allocating: negative if the stored key orders first, zero if equal, positive if after.
   */
  #compareKey(offset: number, storedLength: number, key: Uint8Array): number {
    const bytes = this.#bytes;
    const length = storedLength < key.length ? storedLength : key.length;
    for (let i = 0; i < length; i++) {
      const difference = bytes[offset + i]! - key[i]!;
      if (difference !== 0) return difference;
    }
    return storedLength - key.length;
  }

  /** Compares the record node at `record` with (key, sequence) in record order. */
  #compareRecord(record: number, key: Uint8Array, sequence: number): number {
    const word = record >> 2;
    const byKey = this.#compareKey(record + RECORD_FIXED_BYTES, this.#words[word + RECORD_KEY_LENGTH]!, key);
    return byKey !== 0 ? byKey : sequence - this.#wordPair(word + RECORD_SEQUENCE_LOW);
  }

  /** Compares the tower at `tower` (its record's key and sequence) with (key, sequence) in record order. */
  #compareTower(tower: number, key: Uint8Array, sequence: number): number {
    const word = tower >> 2;
    const keyOffset = tower + TOWER_FIXED_BYTES + 4 * (this.#words[word + TOWER_HEIGHT]! - 1);
    const byKey = this.#compareKey(keyOffset, this.#words[word + TOWER_KEY_LENGTH]!, key);
    return byKey !== 0 ? byKey : sequence - this.#wordPair(word + TOWER_SEQUENCE_LOW);
  }

  /**
   * The last record ordering before (key, sequence) (the head record if none), found through the
   * towers. Pass sequence Infinity to find the record before the key's newest. Also fills
   * #predecessors with the last tower before (key, sequence) at levels 1..height-1.
   */
  #seek(key: Uint8Array, sequence: number): number {
    const words = this.#words;
    const predecessors = this.#predecessors;
    let tower = HEAD_TOWER;
    let notBefore = 0; // a tower already found not to order before (key, sequence): skip re-comparing it
    for (let level = words[WORD_HEIGHT]! - 1; level >= 1; level--) {
      for (;;) {
        const next = words[(tower >> 2) + TOWER_NEXT + level - 1]!;
        if (next === 0 || next === notBefore || this.#compareTower(next, key, sequence) >= 0) {
          notBefore = next;
          break;
        }
        tower = next;
      }
      predecessors[level] = tower;
    }
    const stop = notBefore === 0 ? 0 : words[(notBefore >> 2) + TOWER_RECORD]!;
    let record = words[(tower >> 2) + TOWER_RECORD]!;
    for (;;) {
      const next = words[(record >> 2) + RECORD_NEXT]!;
      if (next === 0 || next === stop || this.#compareRecord(next, key, sequence) >= 0) return record;
      record = next;
    }
  }

  #writeRecord(fields: { record: number; key: Uint8Array; sequence: number; kind: RecordKind; payload: Uint8Array }): void {
    const { record, key, sequence, kind, payload } = fields;
    const words = this.#words;
    const word = record >> 2;
    words[word + RECORD_KIND] = kind;
    words[word + RECORD_KEY_LENGTH] = key.length;
    words[word + RECORD_PAYLOAD_LENGTH] = payload.length;
    writeWordPair(words, word + RECORD_SEQUENCE_LOW, sequence);
    this.#bytes.set(key, record + RECORD_FIXED_BYTES);
    this.#bytes.set(payload, record + RECORD_FIXED_BYTES + key.length);
  }

  #writeTower(fields: { tower: number; record: number; height: number; key: Uint8Array; sequence: number }): void {
    const { tower, record, height, key, sequence } = fields;
    const words = this.#words;
    const word = tower >> 2;
    words[word + TOWER_RECORD] = record;
    words[word + TOWER_HEIGHT] = height;
    words[word + TOWER_KEY_LENGTH] = key.length;
    writeWordPair(words, word + TOWER_SEQUENCE_LOW, sequence);
    this.#bytes.set(key, tower + TOWER_FIXED_BYTES + 4 * (height - 1));
  }

  /** Links a written tower after #predecessors at levels 1..height-1, raising the list height if needed. */
  #linkTower(tower: number, height: number): void {
    const words = this.#words;
    const predecessors = this.#predecessors;
    const listHeight = words[WORD_HEIGHT]!;
    for (let level = listHeight; level < height; level++) predecessors[level] = HEAD_TOWER;
    if (height > listHeight) words[WORD_HEIGHT] = height;
    const word = tower >> 2;
    for (let level = 1; level < height; level++) {
      const predecessorLink = (predecessors[level]! >> 2) + TOWER_NEXT + level - 1;
      words[word + TOWER_NEXT + level - 1] = words[predecessorLink]!;
      words[predecessorLink] = tower;
    }
  }

  #noteSequence(sequence: number): void {
    const words = this.#words;
    const empty = words[WORD_ENTRY_COUNT] === 0;
    if (empty || sequence < this.sequenceMin) writeWordPair(words, WORD_SEQUENCE_MIN_LOW, sequence);
    if (empty || sequence > this.sequenceMax) writeWordPair(words, WORD_SEQUENCE_MAX_LOW, sequence);
  }

  /** A height from 1 to HEIGHT_MAX, each further level kept with probability 1/4 (one mulberry32 draw). */
  #randomHeight(): number {
    let t = (this.#randomState = (this.#randomState + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    let bits = (t ^ (t >>> 14)) >>> 0;
    let height = 1;
    while (height < HEIGHT_MAX && (bits & 3) === 0) {
      height++;
      bits >>>= 2;
    }
    return height;
  }
}

function validateKey(action: string, key: Uint8Array): void {
  if (!(key instanceof Uint8Array)) {
    throw new LoomTypeError(`memtable ${action} failed: key is ${describe(key)}, expected a Uint8Array`);
  }
}

function validateInsert(key: Uint8Array, sequence: number, kind: RecordKind, payload: Uint8Array): void {
  validateKey("insert", key);
  if (key.length === 0 || key.length > limits.storeKeyBytesMax) {
    throw new LoomRangeError(`memtable insert failed: key is ${key.length} bytes, must be from 1 to ${limits.storeKeyBytesMax}`);
  }
  if (!Number.isSafeInteger(sequence) || sequence < 0 || sequence > SEQUENCE_MAX) {
    throw new LoomRangeError(`memtable insert failed: sequence is ${describe(sequence)}, must be an integer from 0 to ${SEQUENCE_MAX}`);
  }
  if (!isRecordKind(kind)) {
    throw new LoomTypeError(`memtable insert failed: kind is ${describe(kind)}, not a RecordKind`);
  }
  if (!(payload instanceof Uint8Array)) {
    throw new LoomTypeError(`memtable insert failed: payload is ${describe(payload)}, expected a Uint8Array`);
  }
  if (payload.length > limits.recordPayloadBytesMax) {
    throw new LoomRangeError(
      `memtable insert failed: payload is ${payload.length} bytes, limit is ${limits.recordPayloadBytesMax}`,
    );
  }
}
