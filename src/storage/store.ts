/**
 * The storage engine of one node: commit log, memtables, SSTables, manifest, background flush and
 * compaction. One instance per node worker; also usable alone in one thread.
 *
 * Thread contract: every method must be called from the thread that opened the store. Reads are
 * synchronous (they may block on a pread); writes resolve once durable under the fsync policy.
 *
 * Write path: validate → sequence numbers → commit-log record (group commit) → memtable.
 * Read path: active memtable, frozen memtables (newest first), tables newest first, each table
 * skipped when its Bloom filter says no; a put record ends the search, merge records accumulate.
 *
 * This file is the Store itself: open, the public API and close. Its jobs live beside it, over
 * the shared state of store_state.ts: write_validation.ts, write_stall.ts, write_group.ts (group
 * commit), memtable_rotation.ts, background_work.ts (flush, compaction), live_files.ts,
 * key_lookup.ts (get), snapshot_reads.ts (entries, scan), store_recovery.ts, store_stats.ts.
 */
import { limits } from "../util/limits.ts";
import { lockDirectory, type FileLock, type FileSystem } from "../io/file_system.ts";
import type { Clock } from "../io/clock.ts";
import { compactRun, scheduleBackgroundWork, track } from "./background_work.ts";
import { lookup } from "./key_lookup.ts";
import { ensureRoom, rotate } from "./memtable_rotation.ts";
import { loadMergeRule, type MergeRule } from "./merge_rule.ts";
import type { FolderReference } from "./scan_job.ts";
import { iterateEntries, scanSnapshot, type RangeOptions, type StoreEntry } from "./snapshot_reads.ts";
import type { StorageJobs } from "./storage_jobs.ts";
import { resolveStoreConfig, type StoreConfig } from "./store_config.ts";
import type { KeyInput, VersionInput } from "./store_input.ts";
import { recover, type Recovered } from "./store_recovery.ts";
import { StoreState } from "./store_state.ts";
import { storeStats, type StoreStats } from "./store_stats.ts";
import type { Version } from "./version_set_format.ts";
import { append, commitGroup } from "./write_group.ts";
import { stall } from "./write_stall.ts";
import { validateBatch, type WriteOperation } from "./write_validation.ts";

export type { RangeOptions, StoreEntry } from "./snapshot_reads.ts";
export type { StoreStats } from "./store_stats.ts";
export type { WriteOperation } from "./write_validation.ts";

export interface StoreOpenOptions extends Partial<StoreConfig> {
  /** The store's own directory (created if missing). */
  readonly directory: string;
  readonly fs: FileSystem;
  readonly clock: Clock;
  /** Runs flushes and compactions. The store closes it on close() when `ownsJobs` is true. */
  readonly jobs: StorageJobs;
  readonly ownsJobs?: boolean;
}

export class Store {
  readonly directory: string;
  readonly config: StoreConfig;
  readonly #ownsJobs: boolean;
  /** `<directory>/LOCK`, held from open to close: one Store per directory, in any process. */
  readonly #lock: FileLock;
  /** Everything else the store holds, shared with the files that implement its jobs. */
  readonly #store: StoreState;

  private constructor(options: StoreOpenOptions, config: StoreConfig, rule: MergeRule, recovered: Recovered, lock: FileLock) {
    this.directory = options.directory;
    this.#lock = lock;
    this.config = config;
    this.#ownsJobs = options.ownsJobs ?? false;
    this.#store = new StoreState(options, config, rule, recovered);
  }

  /**
   * Opens (or creates) the store in `options.directory`: locks it (`LOCK`, held until close),
   * reads the manifest, removes files a crash left behind, replays the commit logs, and resumes.
   * Throws LockedError if another Store has the directory open (in this process or another; a
   * lock whose holder died is taken over), CorruptionError if a log or table is damaged anywhere
   * but a log's torn tail. A failed open releases the lock.
   */
  static async open(options: StoreOpenOptions): Promise<Store> {
    const config = resolveStoreConfig(options);
    const rule = await loadMergeRule(config.mergeRule);
    options.fs.makeDirectory(options.directory);
    const lock = lockDirectory(options.fs, options.directory, "open store");
    try {
      const recovered = recover(options.fs, options.directory, config);
      const store = new Store(options, config, rule, recovered, lock);
      scheduleBackgroundWork(store.#store);
      return store;
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  // ---- writes -------------------------------------------------------------------------------

  /** Replaces the version set of `key`. Resolves once durable under the fsync policy. */
  put(key: KeyInput, versions: readonly VersionInput[]): Promise<void> {
    return this.write([{ key, kind: "put", versions }]);
  }

  /** Adds versions to `key`; the merge rule resolves them with what the key holds. */
  merge(key: KeyInput, versions: readonly VersionInput[]): Promise<void> {
    return this.write([{ key, kind: "merge", versions }]);
  }

  /** Replaces the version set of `key` with one tombstone carrying `version`. */
  delete(key: KeyInput, version: Uint8Array): Promise<void> {
    return this.write([{ key, kind: "put", versions: [{ version, value: null }] }]);
  }

  /**
   * Applies `operations` atomically (one commit-log record, consecutive sequences): after a crash
   * either all are present or none. Validates everything before writing anything.
   */
  async write(operations: readonly WriteOperation[]): Promise<void> {
    const store = this.#store;
    let entries = validateBatch(operations, store.payloadWriter, store.config.memtableBytes);
    store.checkWritable("write");
    if (store.frozen.length >= limits.frozenMemtablesMax) {
      // A single write's payload is a view of the shared payload writer: own it before yielding.
      entries = entries.map((entry) => ({ ...entry, payload: entry.payload.slice() }));
      await stall(store);
    }
    store.checkWritable("write");
    ensureRoom(store, entries);
    return append(store, entries);
  }

  /** The sequence number of the last record written (0 before the first). Rises by one per operation. */
  get lastSequence(): number {
    return this.#store.nextSequence - 1;
  }

  /**
   * Whether a write issued now would first wait for a memtable flush. When false, `write()` appends
   * before it returns (synchronously), so a read-modify-write of one key done in the same
   * synchronous block cannot interleave with another: callers that merge into what they read use
   * `whenWritable()` first.
   */
  get writeWouldWait(): boolean {
    return this.#store.frozen.length >= limits.frozenMemtablesMax;
  }

  /** Resolves once `writeWouldWait` is false. Fails like `write()` if the store is closed or failed. */
  async whenWritable(): Promise<void> {
    this.#store.checkWritable("write");
    while (this.writeWouldWait) {
      await stall(this.#store);
      this.#store.checkWritable("write");
    }
  }

  // ---- reads --------------------------------------------------------------------------------

  /**
   * The versions of `key` (tombstones included), newest record first; [] when the key was never
   * written or its versions were purged. Synchronous.
   */
  get(key: KeyInput): Version[] {
    return lookup(this.#store, key);
  }

  /**
   * Ordered iteration over live keys in [start, end), with their resolved versions (keys whose
   * versions are all purged are skipped; tombstones are returned). Sees a consistent snapshot of
   * the records written before the call. Tables stay open until the iteration ends.
   */
  entries(options: RangeOptions = {}): Generator<StoreEntry> {
    return iterateEntries(this.#store, options);
  }

  /**
   * Folds every live key (tombstones included) of a snapshot taken at the call, in a pool
   * thread (scan_job.ts): the active memtable is frozen so that every source is immutable, the
   * sources stay pinned until the job ends, and the store keeps taking writes meanwhile. The
   * snapshot is taken synchronously, before the returned promise first yields.
   * Throws (rejects) when the store is closed or has failed.
   */
  scan(folder: FolderReference, params: unknown): Promise<unknown> {
    return scanSnapshot(this.#store, folder, params);
  }

  // ---- background work ----------------------------------------------------------------------

  /** Flushes the active memtable (if it holds anything) and waits until every frozen one is in a table. */
  async flush(): Promise<void> {
    const store = this.#store;
    store.checkWritable("flush");
    if (store.active.memtable.entryCount > 0) rotate(store);
    while (store.frozen.length > 0 || store.flushing) {
      if (store.failure) throw store.failure;
      scheduleBackgroundWork(store);
      await store.flushing;
    }
    if (store.failure) throw store.failure;
  }

  /** Resolves once no flush or compaction runs and none is due (background work has caught up). */
  async idle(): Promise<void> {
    const store = this.#store;
    while (store.flushing || store.compacting) {
      await Promise.all([store.flushing, store.compacting]);
      if (store.failure) throw store.failure;
    }
  }

  /** Flushes, then merges every table into one (a major compaction). */
  async compact(): Promise<void> {
    const store = this.#store;
    await this.flush();
    while (store.compacting) await store.compacting;
    if (store.tables.length > 1 && !store.failure) {
      store.compacting = track(store, compactRun(store, 0, store.tables.length), () => (store.compacting = undefined));
      await store.compacting;
    }
    if (store.failure) throw store.failure;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /**
   * Waits for pending writes and the running background job, then closes files and releases the
   * directory's lock. Unflushed memtables are not flushed: their logs are replayed at the next open.
   */
  async close(): Promise<void> {
    const store = this.#store;
    if (store.state !== "open") return;
    store.state = "closing";
    if (store.commitTimer !== undefined) store.clock.clearTimer(store.commitTimer);
    store.commitTimer = undefined;
    commitGroup(store);
    for (const resolve of store.stallWaiters.splice(0)) resolve();
    while (store.flushing || store.compacting) await Promise.all([store.flushing, store.compacting]);
    store.state = "closed";
    try {
      store.log.writer.close();
      for (const table of store.tables) table.reader.close();
    } finally {
      this.#lock.release();
    }
    if (this.#ownsJobs) await store.jobs.close();
  }

  get closed(): boolean {
    return this.#store.state === "closed";
  }

  /** The IO error that made the store read-only, if any. */
  get failure(): Error | undefined {
    return this.#store.failure;
  }

  /**
   * Calls `listener` once, synchronously, when the store first fails (an IO failure on the write
   * path: it is read-only from then on). Not called for a store that has already failed.
   */
  onFailure(listener: (failure: Error) => void): void {
    this.#store.failureListeners.push(listener);
  }

  stats(): StoreStats {
    return storeStats(this.#store);
  }
}
