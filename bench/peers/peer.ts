/**
 * The one interface the storage benchmark drives: loomkv and its peers (classic-level, lmdb-js)
 * each get a thin adapter behind it, so every system runs the identical workload.
 *
 * Contract for adapters: `put` and `writeBatch` resolve when the system acknowledges the write
 * under its own durability setting (described in `durability`); `get` is synchronous and returns
 * the stored value bytes or undefined; keys and values passed in are owned by the caller and are
 * never mutated, and an adapter must not keep them after the call returns.
 */

export interface BenchRecord {
  /** 16-byte key. */
  readonly key: Uint8Array;
  /** 100-byte value. */
  readonly value: Uint8Array;
}

export interface BenchPeer {
  /** Short system name used in the report ("loomkv", "classic-level", "lmdb-js"). */
  readonly name: string;
  /** Library version, or "workspace" for loomkv. */
  readonly version: string;
  /** The durability setting this instance runs with, and what an acknowledged write survives. */
  readonly durability: string;
  /** How `get` reads (e.g. "synchronous Store.get"). */
  readonly readPath: string;
  /** Stores one record; resolves when acknowledged. */
  put(key: Uint8Array, value: Uint8Array): Promise<void>;
  /** Stores `records` atomically as one batch; resolves when acknowledged. */
  writeBatch(records: readonly BenchRecord[]): Promise<void>;
  /** The value stored under `key`, or undefined. Synchronous. */
  get(key: Uint8Array): Uint8Array | undefined;
  /**
   * Brings the system to a quiet state without discarding data (loomkv: flush the memtable and
   * wait for compactions; lmdb-js: wait for the last commit's flush; classic-level: nothing).
   */
  settle(): Promise<void>;
  /** Facts worth printing next to the figures (table counts, file bytes). */
  describe(): Record<string, string | number>;
  /** Closes the system; the caller removes the directory afterwards. */
  close(): Promise<void>;
}

export interface PeerOpenOptions {
  /** An empty directory owned by this peer for the run. */
  readonly directory: string;
  /**
   * Block cache bytes, where the system has a block cache of its own (loomkv, classic-level): the
   * same budget for each, so the comparison is of read paths, not of cache sizes. lmdb-js reads
   * through the OS page cache and takes none.
   */
  readonly cacheBytes?: number;
}
