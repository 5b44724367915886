/**
 * LRU cache of verified SSTable data blocks, keyed by (file number, block offset), bounded by a
 * byte budget. One cache is shared by every reader of a store; it is not shared across threads.
 *
 * Ownership: a block handed to `insert` becomes the cache's and must never be modified again by
 * anyone; `get` returns that same immutable array. An evicted block is dropped, never reused, so a
 * view into it stays valid (readers still copy what they return, so that a record does not pin a
 * whole block in memory).
 */
import { LoomRangeError } from "../util/errors.ts";

/** Bookkeeping charged per entry on top of the block's bytes (map slot, list node, array header). */
const ENTRY_OVERHEAD_BYTES = 96;

export interface BlockCacheStats {
  readonly hits: number;
  readonly misses: number;
  /** Bytes charged: block bytes plus per-entry overhead. Never above `capacityBytes`. */
  readonly bytes: number;
  readonly entries: number;
  readonly capacityBytes: number;
}

interface Entry {
  readonly fileNumber: number;
  readonly offset: number;
  block: Uint8Array;
  charge: number;
  newer: Entry;
  older: Entry;
}

export class BlockCache {
  readonly capacityBytes: number;
  /** fileNumber → offset → entry: two number-keyed maps, so a lookup builds no string key. */
  readonly #files = new Map<number, Map<number, Entry>>();
  /** Sentinel of a circular list: `#list.older` is the most recently used, `#list.newer` the least. */
  readonly #list: Entry;
  #bytes = 0;
  #entries = 0;
  #hits = 0;
  #misses = 0;

  constructor(options: { capacityBytes: number }) {
    const capacityBytes = options.capacityBytes;
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 0) {
      throw new LoomRangeError(`block cache failed: capacityBytes must be a non-negative integer, got ${String(capacityBytes)}`);
    }
    this.capacityBytes = capacityBytes;
    const sentinel = { fileNumber: -1, offset: -1, block: new Uint8Array(0), charge: 0 } as Entry;
    sentinel.newer = sentinel;
    sentinel.older = sentinel;
    this.#list = sentinel;
  }

  /** The cached block, now the most recently used, or undefined (counted as a miss). */
  get(fileNumber: number, offset: number): Uint8Array | undefined {
    const entry = this.#files.get(fileNumber)?.get(offset);
    if (entry === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#unlink(entry);
    this.#linkNewest(entry);
    return entry.block;
  }

  /**
   * Caches `block` (which the caller must no longer modify), evicting least recently used blocks
   * to stay within the budget. A block larger than the whole budget is not cached.
   */
  insert(fileNumber: number, offset: number, block: Uint8Array): void {
    const charge = block.byteLength + ENTRY_OVERHEAD_BYTES;
    let file = this.#files.get(fileNumber);
    const existing = file?.get(offset);
    if (existing !== undefined) this.#remove(existing);
    if (charge > this.capacityBytes) return;
    while (this.#bytes + charge > this.capacityBytes) this.#remove(this.#list.newer);
    if (file === undefined) {
      file = new Map();
      this.#files.set(fileNumber, file);
    }
    const entry = { fileNumber, offset, block, charge } as Entry;
    file.set(offset, entry);
    this.#linkNewest(entry);
    this.#bytes += charge;
    this.#entries++;
  }

  /** Drops every block of a file (call when the table is deleted, so its number can be reused). */
  evictFile(fileNumber: number): void {
    const file = this.#files.get(fileNumber);
    if (file === undefined) return;
    for (const entry of [...file.values()]) this.#remove(entry);
  }

  clear(): void {
    for (const fileNumber of [...this.#files.keys()]) this.evictFile(fileNumber);
  }

  stats(): BlockCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      bytes: this.#bytes,
      entries: this.#entries,
      capacityBytes: this.capacityBytes,
    };
  }

  #remove(entry: Entry): void {
    this.#unlink(entry);
    const file = this.#files.get(entry.fileNumber)!;
    file.delete(entry.offset);
    if (file.size === 0) this.#files.delete(entry.fileNumber);
    this.#bytes -= entry.charge;
    this.#entries--;
  }

  #unlink(entry: Entry): void {
    entry.newer.older = entry.older;
    entry.older.newer = entry.newer;
  }

  #linkNewest(entry: Entry): void {
    const sentinel = this.#list;
    entry.older = sentinel.older;
    entry.newer = sentinel;
    sentinel.older.newer = entry;
    sentinel.older = entry;
  }
}
