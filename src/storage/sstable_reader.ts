/**
 * Reads one immutable SSTable (format: sstable_format.ts, docs/formats/sstable.md).
 *
 * `open` reads and verifies the footer and the filter, properties and index blocks, and keeps the
 * filter and the decoded index in memory. A point read is then: Bloom filter → binary search of
 * the index → block from the cache or one pread (CRC-verified right after the read) → binary
 * search of the block's restart points → linear scan. Every record returned is a copy: its key
 * and payload never alias a block (cached or not). They are views into a small shared slab
 * (data_block_cursor.ts, allocateRecordBytes): copy a payload before transferring its `.buffer`.
 *
 * Not thread-safe: one reader serves one thread. Corruption is reported as CorruptionError naming
 * the file and the offset of the block (or footer) that failed; a wrong value is never returned.
 */
import type { FileHandle, FileSystem } from "../io/file_system.ts";
import { ClosedError, CorruptionError, LoomTypeError, describe } from "../util/errors.ts";
import type { BlockCache } from "./block_cache.ts";
import { mayContain, mayContainHashes, type KeyHashes } from "./bloom.ts";
import type { StoredRecord } from "./record.ts";
import {
  BLOCK_TRAILER_BYTES,
  BlockKind,
  decodeFooter,
  decodeIndex,
  decodeProperties,
  findSeparator,
  FOOTER_BYTES,
  verifyBlock,
  type BlockHandle,
  type TableIndex,
  type TableProperties,
} from "./sstable_format.ts";
import { DataBlockCursor } from "./data_block_cursor.ts";

/** A scan reads this many bytes of consecutive data blocks per pread (at least one block). */
const SCAN_READAHEAD_BYTES = 256 * 1024;

export interface SSTableReaderOptions {
  /** Shared cache for data blocks read by `recordsFor`. REQUIRES `fileNumber` when given. */
  readonly cache?: BlockCache;
  /** The table's number in its store, unique among the files sharing `cache`. */
  readonly fileNumber?: number;
}

export interface ScanOptions {
  /**
   * Put the blocks a scan reads into the cache. Off by default: a compaction or anti-entropy scan
   * would otherwise evict the point-read working set. @default false
   */
  readonly fillCache?: boolean;
}

export class SSTableReader {
  readonly path: string;
  readonly properties: TableProperties;
  readonly fileBytes: number;
  readonly #handle: FileHandle;
  readonly #filter: Uint8Array;
  readonly #index: TableIndex;
  readonly #cache: BlockCache | undefined;
  readonly #fileNumber: number;
  readonly #cursor = new DataBlockCursor();
  /** Reused read buffer for point reads without a cache (nothing returned aliases it). */
  #scratch = new Uint8Array(0);
  #closed = false;

  private constructor(parts: {
    path: string;
    handle: FileHandle;
    fileBytes: number;
    properties: TableProperties;
    filter: Uint8Array;
    index: TableIndex;
    cache: BlockCache | undefined;
    fileNumber: number;
  }) {
    this.path = parts.path;
    this.#handle = parts.handle;
    this.fileBytes = parts.fileBytes;
    this.properties = parts.properties;
    this.#filter = parts.filter;
    this.#index = parts.index;
    this.#cache = parts.cache;
    this.#fileNumber = parts.fileNumber;
  }

  /**
   * Opens the table at `path`: reads and verifies footer, filter, properties and index (two
   * reads). Throws CorruptionError if any of them fails a check, IoError if the file cannot be read.
   */
  static open(fs: FileSystem, path: string, options: SSTableReaderOptions = {}): SSTableReader {
    const { cache, fileNumber } = options;
    if (cache !== undefined && (fileNumber === undefined || !Number.isSafeInteger(fileNumber) || fileNumber < 0)) {
      throw new LoomTypeError(`open table failed: a cache needs a non-negative integer fileNumber, got ${describe(fileNumber)}`);
    }
    const handle = fs.open(path, "read");
    try {
      return SSTableReader.#load(handle, path, cache, fileNumber ?? -1);
    } catch (error) {
      handle.close();
      throw error;
    }
  }

  static #load(handle: FileHandle, path: string, cache: BlockCache | undefined, fileNumber: number): SSTableReader {
    const fileBytes = handle.size();
    if (fileBytes < FOOTER_BYTES) {
      throw new CorruptionError(`file is ${fileBytes} bytes, shorter than the ${FOOTER_BYTES}-byte footer`, path, 0);
    }
    const footer = decodeFooter(readExactly(handle, fileBytes - FOOTER_BYTES, FOOTER_BYTES, path), fileBytes, path);
    // Filter, properties and index lie between the data blocks and the footer: one read.
    const metaStart = Math.min(footer.filter.offset, footer.properties.offset, footer.index.offset);
    const meta = readExactly(handle, metaStart, fileBytes - FOOTER_BYTES - metaStart, path);
    const metaBlock = (blockHandle: BlockHandle, kind: BlockKind): Uint8Array =>
      verifyBlock(meta, blockHandle.offset - metaStart, blockHandle, kind, path);
    const filter = metaBlock(footer.filter, BlockKind.filter);
    const properties = decodeProperties(
      metaBlock(footer.properties, BlockKind.properties),
      footer.formatVersion,
      path,
      footer.properties.offset,
    );
    const index = decodeIndex(metaBlock(footer.index, BlockKind.index), metaStart, path, footer.index.offset);
    if (index.count !== properties.dataBlockCount) {
      throw new CorruptionError(
        `index lists ${index.count} data blocks, properties say ${properties.dataBlockCount}`,
        path,
        footer.index.offset,
      );
    }
    return new SSTableReader({ path, handle, fileBytes, properties, filter, index, cache, fileNumber });
  }

  /** False if the table certainly holds no record of `key` (Bloom filter; no IO). */
  /** Bytes this reader holds in memory for the table's life: its Bloom filter and decoded index. */
  get memoryBytes(): { readonly filter: number; readonly index: number } {
    const index = this.#index;
    return {
      filter: this.#filter.byteLength,
      index: index.separatorBytes.byteLength + index.separatorStarts.byteLength + index.offsets.byteLength + index.sizes.byteLength,
    };
  }

  mayContain(key: Uint8Array): boolean {
    this.#checkKey("mayContain", key);
    return mayContain(this.#filter, key);
  }

  /** mayContain for a key hashed once with `keyHashes` (a point read probing every table). */
  mayContainHashes(hashes: KeyHashes): boolean {
    this.#checkOpen("mayContain");
    return mayContainHashes(this.#filter, hashes);
  }

  /**
   * Every record of `key`, newest (highest sequence) first; [] if none. Records are copies: the
   * key and the payloads are views into one fresh buffer per data block read (never into a block,
   * cached or not), and all returned records share one key array.
   * A key's records may continue over several data blocks; all are returned. `filterChecked`: the
   * caller already asked this table's filter (mayContainHashes said yes), so it is not asked again.
   */
  recordsFor(key: Uint8Array, filterChecked = false): StoredRecord[] {
    this.#checkKey("recordsFor", key);
    if (!filterChecked && !mayContain(this.#filter, key)) return [];
    let block = findSeparator(this.#index, key);
    const blockCount = this.#index.count;
    if (block >= blockCount) return [];
    const cursor = this.#cursor;
    this.#positionCursor(block);
    if (!cursor.seek(key)) return [];
    const found: StoredRecord[] = [];
    let keyCopy: Uint8Array | undefined;
    for (;;) {
      if (cursor.compareKey(key) !== 0) return found;
      keyCopy = cursor.takeKeyRecords(key, found, keyCopy);
      // Stopped on a larger key, or the block ended while the key still matched: go on.
      if (cursor.valid || ++block >= blockCount) return found;
      this.#positionCursor(block);
      cursor.first();
    }
  }

  /**
   * Records in table order, starting at the first key >= `start` (the first record when absent).
   * Each yielded record is a fresh copy. Reads consecutive blocks in chunks of about 256 KiB, each
   * block verified as it is reached. The iterator throws ClosedError once the reader is closed.
   */
  records(start?: Uint8Array, options: ScanOptions = {}): IterableIterator<StoredRecord> {
    if (start !== undefined) this.#checkKey("records", start);
    else this.#checkOpen("records");
    return this.#scan(start, options.fillCache ?? false);
  }

  *#scan(start: Uint8Array | undefined, fillCache: boolean): IterableIterator<StoredRecord> {
    const { offsets, sizes } = this.#index;
    const cursor = new DataBlockCursor();
    let block = start === undefined ? 0 : findSeparator(this.#index, start);
    let chunk: Uint8Array = new Uint8Array(0);
    let chunkOffset = 0;
    let seeking = start !== undefined;
    for (; block < offsets.length; block++) {
      const handle: BlockHandle = { offset: offsets[block]!, size: sizes[block]! };
      if (handle.offset + handle.size + BLOCK_TRAILER_BYTES > chunkOffset + chunk.length) {
        this.#checkOpen("records");
        chunkOffset = handle.offset;
        chunk = this.#readAhead(block);
      }
      const contents = verifyBlock(chunk, handle.offset - chunkOffset, handle, BlockKind.data, this.path);
      if (fillCache && this.#cache !== undefined) this.#cache.insert(this.#fileNumber, handle.offset, contents.slice());
      cursor.reset(contents, this.path, handle.offset);
      const positioned = seeking ? cursor.seek(start!) : cursor.first();
      seeking = false;
      if (!positioned) continue;
      do yield cursor.record();
      while (cursor.next());
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handle.close();
  }

  #checkOpen(action: string): void {
    if (this.#closed) throw new ClosedError(`${action} failed: table ${this.path} is closed`);
  }

  #checkKey(action: string, key: unknown): asserts key is Uint8Array {
    if (!(key instanceof Uint8Array)) throw new LoomTypeError(`${action} failed: key must be a Uint8Array, got ${describe(key)}`);
    this.#checkOpen(action);
  }

  /** Points the reader's cursor at data block `block`: from the cache, else one verified pread. */
  #positionCursor(block: number): void {
    const offset = this.#index.offsets[block]!;
    const cache = this.#cache;
    let contents = cache?.get(this.#fileNumber, offset);
    if (contents === undefined) {
      const handle: BlockHandle = { offset, size: this.#index.sizes[block]! };
      const length = handle.size + BLOCK_TRAILER_BYTES;
      let buffer: Uint8Array;
      if (cache === undefined) {
        if (this.#scratch.length < length) this.#scratch = new Uint8Array(Math.max(length, 2 * this.#scratch.length, 8192));
        buffer = this.#scratch.subarray(0, length);
      } else {
        buffer = new Uint8Array(length);
      }
      const count = this.#handle.readAt(buffer, offset);
      if (count !== length) throw new CorruptionError(`data block is truncated: read ${count} of ${length} bytes`, this.path, offset);
      contents = verifyBlock(buffer, 0, handle, BlockKind.data, this.path);
      cache?.insert(this.#fileNumber, offset, contents);
    }
    this.#cursor.reset(contents, this.path, offset);
  }

  /** Reads data block `first` and the following blocks that fit in the readahead window. */
  #readAhead(first: number): Uint8Array {
    const { offsets, sizes } = this.#index;
    const start = offsets[first]!;
    let end = start + sizes[first]! + BLOCK_TRAILER_BYTES;
    for (let next = first + 1; next < offsets.length; next++) {
      const nextEnd = offsets[next]! + sizes[next]! + BLOCK_TRAILER_BYTES;
      if (nextEnd - start > SCAN_READAHEAD_BYTES) break;
      end = nextEnd;
    }
    return readExactly(this.#handle, start, end - start, this.path);
  }
}

/** Reads exactly `length` bytes at `position` into a fresh buffer; a short read is corruption. */
function readExactly(handle: FileHandle, position: number, length: number, path: string): Uint8Array {
  const buffer = new Uint8Array(length);
  const count = handle.readAt(buffer, position);
  if (count !== length) throw new CorruptionError(`file is truncated: read ${count} of ${length} bytes`, path, position);
  return buffer;
}
