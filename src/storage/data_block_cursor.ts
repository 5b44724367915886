/**
 * Decoding of SSTable data blocks (grammar in docs/formats/sstable.md and sstable_format.ts):
 * a reusable cursor over one verified block, and the slab that returned records are copied into.
 */
import { isRecordKind, type RecordKind, type StoredRecord } from "./record.ts";
import { CorruptionError } from "../util/errors.ts";
import { compareRange, matchedLength, readU32, readVarint, varintEnd } from "./sstable_format.ts";

/**
 * A reusable decoder positioned on one entry of one verified data block. Not thread-shared; one
 * per reader (point reads) or per scan. The current key lives in `key[0, keyLength)`, a scratch
 * buffer overwritten by the next move; `record()` copies what it returns.
 */
export class DataBlockCursor {
  #block: Uint8Array = new Uint8Array(0);
  #path = "";
  #blockOffset = 0;
  #restartsStart = 0;
  #restartCount = 0;
  #next = 0;
  key = new Uint8Array(64);
  keyLength = 0;
  sequence = 0;
  kind: RecordKind = 1;
  payloadStart = 0;
  payloadLength = 0;
  /** True while positioned on an entry. */
  valid = false;
  /** Bytes the current key shares with the previous entry's key. */
  #shared = 0;
  // Scratch for takeKeyRecords (reused; grows to the most records one key has in one block).
  readonly #matchStarts: number[] = [];
  readonly #matchLengths: number[] = [];
  readonly #matchSequences: number[] = [];
  readonly #matchKinds: RecordKind[] = [];

  /** Targets `block` (verified contents of the data block at `blockOffset` of `path`); not yet on an entry. */
  reset(block: Uint8Array, path: string, blockOffset: number): void {
    this.#block = block;
    this.#path = path;
    this.#blockOffset = blockOffset;
    this.valid = false;
    this.keyLength = 0;
    this.#next = 0;
    const length = block.length;
    const restartCount = length >= 4 ? readU32(block, length - 4) : 0;
    const restartsStart = length - 4 - restartCount * 4;
    if (restartCount === 0 || restartsStart < 0) {
      throw this.#corrupt(`data block of ${length} bytes has ${restartCount} restart points`);
    }
    this.#restartCount = restartCount;
    this.#restartsStart = restartsStart;
  }

  #corrupt(detail: string): CorruptionError {
    this.valid = false;
    return new CorruptionError(detail, this.#path, this.#blockOffset);
  }

  #restartOffset(index: number): number {
    const offset = readU32(this.#block, this.#restartsStart + index * 4);
    if (offset >= this.#restartsStart) throw this.#corrupt(`restart point ${index} at ${offset} is outside the entries`);
    return offset;
  }

  /** Moves to the first entry; false if the block is exhausted (never for a valid block). */
  first(): boolean {
    this.#next = 0;
    this.keyLength = 0;
    return this.next();
  }

  /** Moves to the next entry; false (and `valid` false) past the last one. */
  next(): boolean {
    const block = this.#block;
    const limit = this.#restartsStart;
    let position = this.#next;
    if (position >= limit) {
      this.valid = false;
      return false;
    }
    const shared = readVarint(block, position, limit);
    const unshared = readVarint(block, varintEnd, limit);
    const payloadLength = readVarint(block, varintEnd, limit);
    const sequence = readVarint(block, varintEnd, limit);
    position = varintEnd;
    if (position < 0) throw this.#corrupt(`entry at ${this.#next} has a malformed header`);
    const kind = block[position++]!;
    const payloadStart = position + unshared;
    if (shared > this.keyLength || payloadStart + payloadLength > limit || !isRecordKind(kind)) {
      throw this.#corrupt(`entry at ${this.#next} is malformed (shared ${shared}, unshared ${unshared}, kind ${kind})`);
    }
    const keyLength = shared + unshared;
    if (keyLength > this.key.length) this.#growKey(keyLength);
    const key = this.key;
    if (unshared < 32) {
      for (let i = 0; i < unshared; i++) key[shared + i] = block[position + i]!;
    } else {
      key.set(block.subarray(position, payloadStart), shared);
    }
    this.keyLength = keyLength;
    this.#shared = shared;
    this.sequence = sequence;
    this.kind = kind;
    this.payloadStart = payloadStart;
    this.payloadLength = payloadLength;
    this.#next = payloadStart + payloadLength;
    this.valid = true;
    return true;
  }

  #growKey(length: number): void {
    const grown = new Uint8Array(Math.max(length, this.key.length * 2));
    grown.set(this.key.subarray(0, this.keyLength));
    this.key = grown;
  }

  /** memcmp of the current key against `target`. REQUIRES: valid. */
  compareKey(target: Uint8Array): number {
    return compareRange(this.key, 0, this.keyLength, target);
  }

  #compareRestartKey(index: number, target: Uint8Array): number {
    const block = this.#block;
    const limit = this.#restartsStart;
    const offset = this.#restartOffset(index);
    const shared = readVarint(block, offset, limit);
    const unshared = readVarint(block, varintEnd, limit);
    readVarint(block, varintEnd, limit);
    readVarint(block, varintEnd, limit);
    const keyStart = varintEnd + 1;
    if (varintEnd < 0 || shared !== 0 || keyStart + unshared > limit) {
      throw this.#corrupt(`restart point ${index} at ${offset} does not hold a whole key`);
    }
    return compareRange(block, keyStart, unshared, target);
  }

  /** Moves to the first entry whose key is >= `target`; false if every key in the block is smaller. */
  seek(target: Uint8Array): boolean {
    // Last restart point whose key is < target: entries of `target` may start right after it.
    let low = 0;
    let high = this.#restartCount - 1;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if (this.#compareRestartKey(middle, target) < 0) low = middle;
      else high = middle - 1;
    }
    this.#next = this.#restartOffset(low);
    this.keyLength = 0;
    if (!this.next()) return false;
    // Linear scan. `matched` is the common prefix of the current key and target. While the
    // current key is < target, a next key sharing more than `matched` bytes with it is still
    // < target; otherwise it equals target on its first `shared` bytes, so the compare starts
    // there. (A restart entry stores shared = 0 whatever it has in common: still correct.)
    let order = compareRange(this.key, 0, this.keyLength, target);
    let matched = matchedLength;
    while (order < 0) {
      if (!this.next()) return false;
      const shared = this.#shared;
      if (shared > matched) continue;
      order = compareRange(this.key, 0, this.keyLength, target, shared);
      matched = matchedLength;
    }
    return true;
  }

  /**
   * Appends to `found` the current entry and every following entry of this block whose key equals
   * `target`, leaving the cursor on the first entry past them (or invalid at the block's end).
   * Their payloads (and the key copy when `key` is not given) are copied into one fresh region
   * (see allocateRecordBytes); the records view into it, never into the block. Returns the key
   * used by the records.
   * REQUIRES: valid and the current key equals `target`.
   */
  takeKeyRecords(target: Uint8Array, found: StoredRecord[], key: Uint8Array | undefined): Uint8Array {
    const starts = this.#matchStarts;
    const lengths = this.#matchLengths;
    const sequences = this.#matchSequences;
    const kinds = this.#matchKinds;
    let count = 0;
    let payloadBytes = 0;
    do {
      starts[count] = this.payloadStart;
      lengths[count] = this.payloadLength;
      sequences[count] = this.sequence;
      kinds[count] = this.kind;
      payloadBytes += this.payloadLength;
      count++;
    } while (this.next() && this.#equalsAfterEqual(target));
    const keyBytes = key === undefined ? target.length : 0;
    const buffer = allocateRecordBytes(keyBytes + payloadBytes);
    let position = recordBytesStart;
    let recordKey = key;
    if (recordKey === undefined) {
      buffer.set(target, position);
      recordKey = buffer.subarray(position, position + keyBytes);
      position += keyBytes;
    }
    const block = this.#block;
    for (let i = 0; i < count; i++) {
      const start = starts[i]!;
      const length = lengths[i]!;
      if (length < 64) {
        for (let j = 0; j < length; j++) buffer[position + j] = block[start + j]!;
      } else {
        buffer.set(block.subarray(start, start + length), position);
      }
      const payload = buffer.subarray(position, position + length);
      found.push({ key: recordKey, sequence: sequences[i]!, kind: kinds[i]!, payload });
      position += length;
    }
    return recordKey;
  }

  /** Whether the current key equals `target`, given that the previous key did. */
  #equalsAfterEqual(target: Uint8Array): boolean {
    if (this.keyLength !== target.length) return false;
    const shared = this.#shared;
    // The first `shared` bytes are the previous key's, which equal target's.
    return shared === target.length || compareRange(this.key, 0, this.keyLength, target, shared) === 0;
  }

  /**
   * The current entry as a record whose key and payload are copies in one fresh region (see
   * allocateRecordBytes): they never alias the block, which may sit in a shared cache.
   * REQUIRES: valid.
   */
  record(): StoredRecord {
    const keyLength = this.keyLength;
    const payloadLength = this.payloadLength;
    const buffer = allocateRecordBytes(keyLength + payloadLength);
    const start = recordBytesStart;
    const keySource = this.key;
    for (let i = 0; i < keyLength; i++) buffer[start + i] = keySource[i]!;
    const payloadStart = this.payloadStart;
    if (payloadLength < 64) {
      const block = this.#block;
      for (let i = 0; i < payloadLength; i++) buffer[start + keyLength + i] = block[payloadStart + i]!;
    } else {
      buffer.set(this.#block.subarray(payloadStart, payloadStart + payloadLength), start + keyLength);
    }
    return {
      key: buffer.subarray(start, start + keyLength),
      sequence: this.sequence,
      kind: this.kind,
      payload: buffer.subarray(start + keyLength, start + keyLength + payloadLength),
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Record memory for point reads.
//
// A fresh ArrayBuffer per read costs about half a microsecond (an off-heap allocation), so the
// bytes of small point-read results are carved from a slab, which is handed out once and never
// written again after: the views never alias a block or a cache buffer. A retained record keeps
// at most its slab (RECORD_SLAB_BYTES) alive. Records share the slab's ArrayBuffer: copy a payload
// before transferring its buffer to another thread.

const RECORD_SLAB_BYTES = 32 * 1024;
let recordSlab = new Uint8Array(RECORD_SLAB_BYTES);
let recordSlabUsed = RECORD_SLAB_BYTES;
/** Where the region returned by the last allocateRecordBytes() starts in its buffer. */
let recordBytesStart = 0;

function allocateRecordBytes(length: number): Uint8Array {
  if (length > RECORD_SLAB_BYTES / 8) {
    recordBytesStart = 0;
    return new Uint8Array(length);
  }
  // length 0: a caller transferred a slab's buffer to another thread (detached); start afresh.
  if (recordSlabUsed + length > RECORD_SLAB_BYTES || recordSlab.length === 0) {
    recordSlab = new Uint8Array(RECORD_SLAB_BYTES);
    recordSlabUsed = 0;
  }
  recordBytesStart = recordSlabUsed;
  recordSlabUsed += length;
  return recordSlab;
}
