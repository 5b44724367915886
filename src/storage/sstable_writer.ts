/**
 * Writes one SSTable (format: sstable_format.ts, docs/formats/sstable.md) from records added in
 * table order. Output is buffered and appended to the handle in chunks of at least
 * WRITE_CHUNK_BYTES, always at block boundaries. The writer never syncs: the caller syncs the
 * handle (and the directory) before publishing the table.
 *
 * Not thread-safe; one writer per file.
 */
import type { FileHandle } from "../io/file_system.ts";
import { assert } from "../util/assert.ts";
import { ByteWriter } from "../util/bytes.ts";
import { LoomRangeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import { BloomFilterBuilder } from "./bloom.ts";
import { isRecordKind, SEQUENCE_MAX, type StoredRecord } from "./record.ts";
import {
  BLOCK_TRAILER_BYTES,
  BlockKind,
  encodeBlockTrailer,
  encodeEntry,
  encodeFooter,
  encodeIndex,
  encodeProperties,
  encodeRestarts,
  entryBytesMax,
  RESTART_INTERVAL,
  SSTABLE_FORMAT_VERSION,
  shortSeparator,
  shortSuccessor,
  type BlockHandle,
  type IndexEntries,
  type TableProperties,
} from "./sstable_format.ts";

/** Buffered output is appended to the file once it reaches this size. */
const WRITE_CHUNK_BYTES = 256 * 1024;
/** Bounds on a configured data block target. */
const BLOCK_BYTES_TARGET_MIN = 64;
const BLOCK_BYTES_TARGET_MAX = 1024 * 1024;

export interface SSTableWriterOptions {
  /** Bloom filter bits per distinct key: more bits, fewer false positives, bigger filter. Whole number. */
  readonly bloomBitsPerKey: number;
  /**
   * Data block size at which a block is cut (a block holds at least one record, so a large record
   * makes a larger block). Smaller blocks make point reads cheaper and the index bigger.
   * @default limits.blockBytesTarget (4 KiB)
   */
  readonly blockBytesTarget?: number;
  /** Creation time recorded in the properties block (storage code reads no clock). @default 0 */
  readonly createdAtMs?: number;
}

export class SSTableWriter {
  readonly #handle: FileHandle;
  readonly #blockBytesTarget: number;
  readonly #bloomBitsPerKey: number;
  readonly #createdAtMs: number;
  readonly #bloom: BloomFilterBuilder;
  /** Output not yet appended to the file: `#buffer[0, #length)`, starting at file offset `#flushedBytes`. */
  #buffer = new Uint8Array(WRITE_CHUNK_BYTES * 2);
  #length = 0;
  #flushedBytes = 0;
  /** Offset in `#buffer` where the open data block's contents start, or -1 when no block is open. */
  #blockStart = -1;
  #restarts: number[] = [];
  #entriesSinceRestart = 0;
  /** Copy of the last added key in `#lastKey[0, #lastKeyLength)`. */
  #lastKey = new Uint8Array(256);
  #lastKeyLength = 0;
  #lastSequence = 0;
  /** Set when a data block was cut: the separator is chosen when the next key is known. */
  #pendingHandle: BlockHandle | null = null;
  readonly #index: IndexEntries = { separators: [], offsets: [], sizes: [] };
  #recordCount = 0;
  #smallestKey = new Uint8Array(0);
  #sequenceMin = 0;
  #sequenceMax = 0;
  #rawBytes = 0;
  #dataBytes = 0;
  #finished = false;

  constructor(handle: FileHandle, options: SSTableWriterOptions) {
    const { bloomBitsPerKey, blockBytesTarget = limits.blockBytesTarget, createdAtMs = 0 } = options;
    if (!Number.isInteger(bloomBitsPerKey) || bloomBitsPerKey < limits.bloomBitsPerKeyMin || bloomBitsPerKey > limits.bloomBitsPerKeyMax) {
      throw new LoomRangeError(
        `create table failed: bloomBitsPerKey is ${String(bloomBitsPerKey)}, expected a whole number in ${limits.bloomBitsPerKeyMin}..${limits.bloomBitsPerKeyMax}`,
      );
    }
    if (!Number.isInteger(blockBytesTarget) || blockBytesTarget < BLOCK_BYTES_TARGET_MIN || blockBytesTarget > BLOCK_BYTES_TARGET_MAX) {
      throw new LoomRangeError(
        `create table failed: blockBytesTarget is ${String(blockBytesTarget)}, expected a whole number in ${BLOCK_BYTES_TARGET_MIN}..${BLOCK_BYTES_TARGET_MAX}`,
      );
    }
    if (!Number.isSafeInteger(createdAtMs) || createdAtMs < 0) {
      throw new LoomRangeError(`create table failed: createdAtMs is ${String(createdAtMs)}, expected a non-negative integer`);
    }
    this.#handle = handle;
    this.#blockBytesTarget = blockBytesTarget;
    this.#bloomBitsPerKey = bloomBitsPerKey;
    this.#createdAtMs = createdAtMs;
    this.#bloom = new BloomFilterBuilder(bloomBitsPerKey);
    this.#flushedBytes = handle.size();
    assert(this.#flushedBytes === 0, `create table failed: ${handle.path} is not empty`);
  }

  /** Bytes produced so far (appended plus buffered); the file size once `finish` returned. */
  get fileBytes(): number {
    return this.#flushedBytes + this.#length;
  }

  /**
   * Adds the next record. REQUIRES: records arrive in table order (key ascending, then sequence
   * descending, no duplicate (key, sequence)), within limits; violations are bugs and assert.
   * The record's arrays may be reused by the caller once `add` returns.
   */
  add(record: StoredRecord): void {
    const { key, sequence, kind, payload } = record;
    if (this.#finished || key.length === 0 || key.length > limits.storeKeyBytesMax || payload.length > limits.recordPayloadBytesMax) {
      assert(false, `add failed: finished ${this.#finished}, key of ${key.length} bytes, payload of ${payload.length} bytes`);
    }
    if (!(Number.isSafeInteger(sequence) && sequence >= 0 && sequence <= SEQUENCE_MAX && isRecordKind(kind))) {
      assert(false, `add failed: sequence ${sequence}, kind ${kind}`);
    }
    const shared = this.#orderCheckedSharedPrefix(key, sequence);
    const newKey = this.#recordCount === 0 || shared !== this.#lastKeyLength || shared !== key.length;
    if (this.#pendingHandle !== null) this.#addIndexEntry(this.#pendingHandle, key);
    if (this.#blockStart < 0) this.#openBlock();
    if (this.#entriesSinceRestart === RESTART_INTERVAL) {
      this.#restarts.push(this.#length - this.#blockStart);
      this.#entriesSinceRestart = 0;
    }
    this.#reserve(entryBytesMax(record));
    this.#length = encodeEntry(this.#buffer, this.#length, this.#entriesSinceRestart === 0 ? 0 : shared, record);
    this.#entriesSinceRestart++;
    if (newKey) {
      this.#bloom.add(key);
      this.#rememberKey(key, shared);
    }
    this.#noteStatistics(record);
    const blockBytes = this.#length - this.#blockStart + 4 * (this.#restarts.length + 1);
    if (blockBytes >= this.#blockBytesTarget) this.#closeBlock();
  }

  /**
   * Ends the data, writes filter, properties and index blocks and the footer, and appends every
   * buffered byte. Does not sync. Returns the table's properties. The writer is unusable after.
   */
  finish(): TableProperties {
    assert(!this.#finished, "finish failed: table is already finished");
    this.#finished = true;
    if (this.#blockStart >= 0) this.#closeBlock();
    if (this.#pendingHandle !== null) {
      this.#pushIndexEntry(this.#pendingHandle, shortSuccessor(this.#lastKey.subarray(0, this.#lastKeyLength)));
      this.#pendingHandle = null;
    }
    const filter = this.#writeMetaBlock(BlockKind.filter, this.#bloom.finish());
    const properties = this.#properties();
    const meta = new ByteWriter(4096);
    encodeProperties(properties, meta);
    const propertiesHandle = this.#writeMetaBlock(BlockKind.properties, meta.view());
    meta.reset();
    encodeIndex(this.#index, meta);
    const index = this.#writeMetaBlock(BlockKind.index, meta.view());
    this.#appendBytes(encodeFooter({ index, filter, properties: propertiesHandle, formatVersion: SSTABLE_FORMAT_VERSION }));
    this.#flush();
    return properties;
  }

  /** Length of the prefix `key` shares with the previous key; asserts table order. */
  #orderCheckedSharedPrefix(key: Uint8Array, sequence: number): number {
    if (this.#recordCount === 0) return 0;
    const last = this.#lastKey;
    const lastLength = this.#lastKeyLength;
    const common = Math.min(lastLength, key.length);
    let shared = 0;
    while (shared < common && last[shared] === key[shared]) shared++;
    if (shared === lastLength && shared === key.length) {
      if (sequence >= this.#lastSequence) {
        assert(false, `add failed: sequence ${sequence} of a repeated key is not below ${this.#lastSequence}`);
      }
    } else {
      const ascending = shared === lastLength || (shared < key.length && key[shared]! > last[shared]!);
      assert(ascending, "add failed: key is smaller than the previous key");
    }
    return shared;
  }

  #rememberKey(key: Uint8Array, shared: number): void {
    if (key.length > this.#lastKey.length) {
      const grown = new Uint8Array(Math.max(key.length, this.#lastKey.length * 2));
      grown.set(this.#lastKey.subarray(0, shared));
      this.#lastKey = grown;
    }
    this.#lastKey.set(shared === 0 ? key : key.subarray(shared), shared);
    this.#lastKeyLength = key.length;
  }

  #noteStatistics(record: StoredRecord): void {
    if (this.#recordCount === 0) {
      this.#smallestKey = record.key.slice();
      this.#sequenceMin = record.sequence;
      this.#sequenceMax = record.sequence;
    } else {
      if (record.sequence < this.#sequenceMin) this.#sequenceMin = record.sequence;
      if (record.sequence > this.#sequenceMax) this.#sequenceMax = record.sequence;
    }
    this.#lastSequence = record.sequence;
    this.#rawBytes += record.key.length + record.payload.length;
    this.#recordCount++;
  }

  #openBlock(): void {
    this.#blockStart = this.#length;
    this.#restarts = [0];
    this.#entriesSinceRestart = 0;
  }

  #closeBlock(): void {
    const start = this.#blockStart;
    this.#reserve(4 * (this.#restarts.length + 1) + BLOCK_TRAILER_BYTES);
    const contentsEnd = encodeRestarts(this.#buffer, this.#length, this.#restarts);
    this.#length = encodeBlockTrailer(this.#buffer, start, contentsEnd, BlockKind.data);
    this.#dataBytes += this.#length - start;
    this.#pendingHandle = { offset: this.#flushedBytes + start, size: contentsEnd - start };
    this.#blockStart = -1;
    if (this.#length >= WRITE_CHUNK_BYTES) this.#flush();
  }

  /** Indexes the closed block now that the first key after it is known. */
  #addIndexEntry(handle: BlockHandle, nextKey: Uint8Array): void {
    this.#pushIndexEntry(handle, shortSeparator(this.#lastKey.subarray(0, this.#lastKeyLength), nextKey));
    this.#pendingHandle = null;
  }

  #pushIndexEntry(handle: BlockHandle, separator: Uint8Array): void {
    this.#index.separators.push(separator);
    this.#index.offsets.push(handle.offset);
    this.#index.sizes.push(handle.size);
  }

  #writeMetaBlock(kind: BlockKind, contents: Uint8Array): BlockHandle {
    const start = this.#length;
    this.#appendBytes(contents);
    this.#reserve(BLOCK_TRAILER_BYTES);
    this.#length = encodeBlockTrailer(this.#buffer, start, this.#length, kind);
    return { offset: this.#flushedBytes + start, size: contents.length };
  }

  #appendBytes(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /** Makes room for `extra` more bytes in the output buffer. */
  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#buffer.length) return;
    const grown = new Uint8Array(Math.max(needed, this.#buffer.length * 2));
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }

  #properties(): TableProperties {
    const empty = this.#recordCount === 0;
    return {
      formatVersion: SSTABLE_FORMAT_VERSION,
      recordCount: this.#recordCount,
      keyCount: this.#bloom.keyCount,
      smallestKey: this.#smallestKey,
      largestKey: empty ? new Uint8Array(0) : this.#lastKey.slice(0, this.#lastKeyLength),
      sequenceMin: this.#sequenceMin,
      sequenceMax: this.#sequenceMax,
      dataBlockCount: this.#index.separators.length,
      dataBytes: this.#dataBytes,
      rawBytes: this.#rawBytes,
      bloomBitsPerKey: this.#bloomBitsPerKey,
      createdAtMs: this.#createdAtMs,
    };
  }

  #flush(): void {
    if (this.#length === 0) return;
    this.#handle.append(this.#buffer.subarray(0, this.#length));
    this.#flushedBytes += this.#length;
    this.#length = 0;
  }
}
