/**
 * Appends logical records to a commit log (format: log_format.ts, docs/formats/log.md).
 *
 * Group commit: `addRecord()` only frames a record into an in-memory pending buffer; `flush()`
 * hands every pending byte to the file in one `append()`, and `sync()` also makes them durable.
 * A crash keeps a prefix of what was appended since the last sync, which the reader reports as a
 * torn tail. Single-threaded: one writer per file, called from the thread that owns the store.
 */
import type { FileHandle } from "../io/file_system.ts";
import { crc32c, maskCrc } from "../util/crc32c.ts";
import { ClosedError, describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import {
  blockBytesLeft,
  FragmentType,
  LOG_BLOCK_BYTES,
  LOG_FRAGMENT_BYTES_MAX,
  LOG_HEADER_BYTES,
  LOG_RECORD_BYTES_MAX,
  LOG_TYPE_OFFSET,
} from "./log_format.ts";

/** Initial pending-buffer capacity, and the size it shrinks back to after a large group. */
const PENDING_BYTES_RETAINED = 4 * LOG_BLOCK_BYTES;

export class LogWriter {
  readonly #handle: FileHandle;
  /** Framed bytes not yet appended: `#buffer[0, #pendingBytes)`. Reused across flushes. */
  #buffer = new Uint8Array(PENDING_BYTES_RETAINED);
  #pendingBytes = 0;
  /** File offset the next framed byte will land at. */
  #fileOffset: number;
  #bytesWritten = 0;
  #unsyncedBytes = 0;
  #closed = false;
  /** Set when an append or sync failed: the file's tail is then unknown and the writer refuses work. */
  #failure: unknown = undefined;

  /**
   * Continues the log at `handle.size()`, also inside a partly filled block.
   * REQUIRES: `handle` is writable and the file ends at a fragment boundary (a log this writer
   * produced, or one cut back to `readLog().validBytes`); the writer owns `handle` and closes it.
   */
  constructor(handle: FileHandle) {
    this.#handle = handle;
    this.#fileOffset = handle.size();
  }

  /** Bytes this writer has appended to the file (flushed), not counting what the file held before. */
  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  /** Framed bytes waiting for the next `flush()` (headers and block trailers included). */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Frames `payload` (0..LOG_RECORD_BYTES_MAX bytes) as one logical record into the pending
   * buffer. Copies it: the caller may reuse `payload` as soon as this returns. Writes nothing.
   */
  addRecord(payload: Uint8Array): void {
    this.#checkUsable("add record");
    if (!(payload instanceof Uint8Array)) {
      throw new LoomTypeError(`add record failed: payload must be a Uint8Array, got ${describe(payload)}`);
    }
    if (payload.length > LOG_RECORD_BYTES_MAX) {
      throw new LoomRangeError(`add record failed: payload is ${payload.length} bytes, limit is ${LOG_RECORD_BYTES_MAX}`);
    }
    this.#reserve(payload.length);
    let position = 0;
    let first = true;
    do {
      let left = blockBytesLeft(this.#fileOffset);
      if (left < LOG_HEADER_BYTES) {
        this.#buffer.fill(0, this.#pendingBytes, this.#pendingBytes + left);
        this.#advance(left);
        left = LOG_BLOCK_BYTES;
      }
      const length = Math.min(payload.length - position, left - LOG_HEADER_BYTES);
      const end = position + length;
      // With exactly a header's worth left in the block, a record begins with an empty FIRST.
      const type = first
        ? (end === payload.length ? FragmentType.full : FragmentType.first)
        : (end === payload.length ? FragmentType.last : FragmentType.middle);
      this.#emitFragment(type, payload.subarray(position, end));
      position = end;
      first = false;
    } while (position < payload.length);
  }

  /** Appends every pending byte in one `handle.append()`; nothing to do when none are pending. */
  flush(): void {
    this.#checkUsable("flush");
    if (this.#pendingBytes === 0) return;
    try {
      this.#handle.append(this.#buffer.subarray(0, this.#pendingBytes));
    } catch (error) {
      this.#failure = error;
      throw error;
    }
    this.#bytesWritten += this.#pendingBytes;
    this.#unsyncedBytes += this.#pendingBytes;
    this.#pendingBytes = 0;
    if (this.#buffer.length > PENDING_BYTES_RETAINED) this.#buffer = new Uint8Array(PENDING_BYTES_RETAINED);
  }

  /** Flushes, then makes everything appended so far durable. */
  sync(): void {
    this.flush();
    try {
      this.#handle.sync();
    } catch (error) {
      this.#failure = error;
      throw error;
    }
    this.#unsyncedBytes = 0;
  }

  /**
   * Flushes pending records, syncs if anything was appended since the last sync (so that rotating
   * to a new log never leaves acknowledged records volatile), and closes the handle. Idempotent.
   * After a failed append or sync it only closes the handle.
   */
  close(): void {
    if (this.#closed) return;
    try {
      if (this.#failure === undefined && (this.#pendingBytes > 0 || this.#unsyncedBytes > 0)) this.sync();
    } finally {
      this.#closed = true;
      this.#handle.close();
    }
  }

  #checkUsable(action: string): void {
    if (this.#closed) throw new ClosedError(`${action} failed: log writer for ${this.#handle.path} is closed`);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Grows the pending buffer to hold a record of `payloadBytes` with every header and trailer it may need. */
  #reserve(payloadBytes: number): void {
    const fragments = Math.ceil(payloadBytes / LOG_FRAGMENT_BYTES_MAX) + 1;
    const needed = this.#pendingBytes + payloadBytes + fragments * LOG_HEADER_BYTES + LOG_HEADER_BYTES;
    if (needed <= this.#buffer.length) return;
    let capacity = this.#buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.#buffer.subarray(0, this.#pendingBytes));
    this.#buffer = next;
  }

  /** REQUIRES: the fragment fits in the current block and the buffer has room (see #reserve). */
  #emitFragment(type: FragmentType, payload: Uint8Array): void {
    const buffer = this.#buffer;
    const start = this.#pendingBytes;
    const length = payload.length;
    buffer[start + 4] = length & 0xff;
    buffer[start + 5] = length >>> 8;
    buffer[start + LOG_TYPE_OFFSET] = type;
    buffer.set(payload, start + LOG_HEADER_BYTES);
    const crc = maskCrc(crc32c(buffer.subarray(start + LOG_TYPE_OFFSET, start + LOG_HEADER_BYTES + length)));
    buffer[start] = crc & 0xff;
    buffer[start + 1] = (crc >>> 8) & 0xff;
    buffer[start + 2] = (crc >>> 16) & 0xff;
    buffer[start + 3] = crc >>> 24;
    this.#advance(LOG_HEADER_BYTES + length);
  }

  #advance(bytes: number): void {
    this.#pendingBytes += bytes;
    this.#fileOffset += bytes;
  }
}
