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
 */
import { assert } from "../util/assert.ts";
import { ByteWriter, compareBytes } from "../util/bytes.ts";
import { BusyError, ClosedError, CorruptionError, LoomRangeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import { joinPath, lockDirectory, type FileHandle, type FileLock, type FileSystem } from "../io/file_system.ts";
import type { Clock, TimerHandle } from "../io/clock.ts";
import { BlockCache } from "./block_cache.ts";
import { pickCompaction } from "./compaction_picker.ts";
import { decodeBatch, encodeBatch, type BatchEntry } from "./log_batch.ts";
import { readLog } from "./log_reader.ts";
import { LogWriter } from "./log_writer.ts";
import {
  emptyManifest,
  logFileName,
  parseFileName,
  readManifest,
  tableFileName,
  writeManifest,
  type ManifestState,
  type TableMeta,
} from "./manifest.ts";
import { Memtable } from "./memtable.ts";
import { loadMergeRule, type MergeRule } from "./merge_rule.ts";
import { groupByKey, mergeRecords } from "./merge_iterator.ts";
import { RecordKind, type StoredRecord } from "./record.ts";
import { resolveRecords } from "./record_resolution.ts";
import { SSTableReader } from "./sstable_reader.ts";
import type { StorageJobs } from "./storage_jobs.ts";
import type { FolderReference } from "./scan_job.ts";
import { resolveStoreConfig, type StoreConfig } from "./store_config.ts";
import { toKeyBytes, toVersions, type KeyInput, type VersionInput } from "./store_input.ts";
import type { TableSummary } from "./table_jobs.ts";
import { encodeVersionSet, encodeVersionSetView, type Version } from "./version_set_format.ts";

export interface StoreOpenOptions extends Partial<StoreConfig> {
  /** The store's own directory (created if missing). */
  readonly directory: string;
  readonly fs: FileSystem;
  readonly clock: Clock;
  /** Runs flushes and compactions. The store closes it on close() when `ownsJobs` is true. */
  readonly jobs: StorageJobs;
  readonly ownsJobs?: boolean;
}

export interface WriteOperation {
  readonly key: KeyInput;
  /** "put" replaces the key's version set; "merge" adds versions, resolved by the merge rule. */
  readonly kind: "put" | "merge";
  readonly versions: readonly VersionInput[];
}

export interface StoreEntry {
  readonly key: Uint8Array;
  readonly versions: Version[];
}

export interface RangeOptions {
  /** First key (inclusive). */
  readonly start?: KeyInput;
  /** Last key (exclusive). */
  readonly end?: KeyInput;
}

export interface StoreStats {
  readonly sequence: number;
  readonly memtable: { readonly entries: number; readonly usedBytes: number; readonly arenaBytes: number };
  readonly frozenMemtables: number;
  /** Background jobs running now or due (a flush and a compaction at most): 0 when the store is idle. */
  readonly backgroundJobs: number;
  readonly tables: readonly { readonly fileNumber: number; readonly fileBytes: number; readonly records: number }[];
  readonly tableBytes: number;
  readonly flushes: number;
  readonly compactions: number;
  readonly logSyncs: number;
  readonly bloomSkips: number;
  readonly blockCache: { readonly hits: number; readonly misses: number; readonly bytes: number };
  readonly recovery: { readonly recordsReplayed: number; readonly tornTails: readonly { path: string; offset: number; reason: string }[] };
}

interface MemtableSlot {
  readonly memtable: Memtable;
  /** Oldest log holding any of this memtable's records. */
  readonly logNumberMin: number;
  /** Open range iterations reading this memtable (its arena must not be reused under them). */
  references: number;
}

interface TableSlot {
  readonly meta: TableMeta;
  readonly reader: SSTableReader;
  /** Open range iterations reading this table. */
  references: number;
  obsolete: boolean;
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

export class Store {
  readonly directory: string;
  readonly config: StoreConfig;
  readonly #fs: FileSystem;
  readonly #clock: Clock;
  readonly #jobs: StorageJobs;
  readonly #ownsJobs: boolean;
  readonly #rule: MergeRule;
  readonly #cache: BlockCache;
  /** `<directory>/LOCK`, held from open to close: one Store per directory, in any process. */
  readonly #lock: FileLock;
  readonly #batchWriter = new ByteWriter(64 * 1024);
  readonly #payloadWriter = new ByteWriter(256);

  #manifest: ManifestState;
  #nextFileNumber: number;
  #nextSequence: number;
  #active: MemtableSlot;
  /** Frozen memtables, newest first, waiting for their flush. */
  #frozen: MemtableSlot[] = [];
  /** Live tables, newest first. */
  #tables: TableSlot[];
  #log: { writer: LogWriter; handle: FileHandle; number: number };

  #waiters: Waiter[] = [];
  #commitScheduled = false;
  #commitTimer: TimerHandle | undefined;
  #stallWaiters: (() => void)[] = [];
  #stalledWrites = 0;
  /** The running flush and the running compaction: at most one of each, side by side. */
  #flushing: Promise<void> | undefined;
  #compacting: Promise<void> | undefined;
  /** The arena of the last flushed memtable, zeroed and reused by the next one. */
  #spareArena: SharedArrayBuffer | undefined;
  #state: "open" | "closing" | "closed" = "open";
  #failure: Error | undefined;

  #flushes = 0;
  #compactions = 0;
  #logSyncs = 0;
  #bloomSkips = 0;
  #recovery: StoreStats["recovery"];

  private constructor(options: StoreOpenOptions, config: StoreConfig, rule: MergeRule, recovered: Recovered, lock: FileLock) {
    this.directory = options.directory;
    this.#lock = lock;
    this.config = config;
    this.#fs = options.fs;
    this.#clock = options.clock;
    this.#jobs = options.jobs;
    this.#ownsJobs = options.ownsJobs ?? false;
    this.#rule = rule;
    this.#cache = recovered.cache;
    this.#manifest = recovered.manifest;
    this.#nextFileNumber = recovered.nextFileNumber;
    this.#nextSequence = recovered.nextSequence;
    this.#tables = recovered.tables;
    this.#frozen = recovered.frozen;
    this.#recovery = recovered.recovery;
    const logNumber = this.#nextFileNumber++;
    this.#log = this.#createLog(logNumber);
    this.#active = { memtable: Memtable.create({ arenaBytes: config.memtableBytes }), logNumberMin: logNumber, references: 0 };
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
      store.#scheduleBackgroundWork();
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
    let entries = this.#validateBatch(operations);
    this.#checkWritable("write");
    if (this.#frozen.length >= limits.frozenMemtablesMax) {
      // A single write's payload is a view of the shared payload writer: own it before yielding.
      entries = entries.map((entry) => ({ ...entry, payload: entry.payload.slice() }));
      await this.#stall();
    }
    this.#checkWritable("write");
    this.#ensureRoom(entries);
    return this.#append(entries);
  }

  /** The sequence number of the last record written (0 before the first). Rises by one per operation. */
  get lastSequence(): number {
    return this.#nextSequence - 1;
  }

  /**
   * Whether a write issued now would first wait for a memtable flush. When false, `write()` appends
   * before it returns (synchronously), so a read-modify-write of one key done in the same
   * synchronous block cannot interleave with another: callers that merge into what they read use
   * `whenWritable()` first.
   */
  get writeWouldWait(): boolean {
    return this.#frozen.length >= limits.frozenMemtablesMax;
  }

  /** Resolves once `writeWouldWait` is false. Fails like `write()` if the store is closed or failed. */
  async whenWritable(): Promise<void> {
    this.#checkWritable("write");
    while (this.writeWouldWait) {
      await this.#stall();
      this.#checkWritable("write");
    }
  }

  #validateBatch(operations: readonly WriteOperation[]): BatchEntry[] {
    if (!Array.isArray(operations) || operations.length === 0) {
      throw new LoomRangeError("write failed: a batch needs at least one operation");
    }
    let needed = 0;
    // One operation (the hot path) keeps its payload as a view of the payload writer, valid until
    // the next write encodes: `write` copies it before it yields. Several operations each own a copy.
    const single = operations.length === 1;
    const entries = operations.map((operation): BatchEntry => {
      const key = toKeyBytes("write", operation?.key, limits.storeKeyBytesMax);
      if (operation.kind !== "put" && operation.kind !== "merge") {
        throw new LoomRangeError(`write failed: operation kind must be "put" or "merge", got ${String(operation.kind)}`);
      }
      const versions = toVersions("write", operation.versions);
      const payload = single ? encodeVersionSetView(versions, this.#payloadWriter) : encodeVersionSet(versions, this.#payloadWriter);
      needed += Memtable.recordBytesMax(key.length, payload.length);
      return { key, kind: operation.kind === "put" ? RecordKind.put : RecordKind.merge, payload };
    });
    // A batch must fit an empty memtable with room to spare, and one commit-log record.
    const limit = Math.min(this.config.memtableBytes / 2, limits.logBatchBytesMax);
    if (needed > limit) throw new LoomRangeError(`write failed: batch needs ${needed} bytes, limit is ${limit}`);
    return entries;
  }

  #checkWritable(action: string): void {
    if (this.#state !== "open") throw new ClosedError(`${action} failed: store is closed`);
    if (this.#failure) throw this.#failure;
  }

  #stall(): Promise<void> {
    if (this.#stalledWrites >= limits.pendingWritesMax) {
      throw new BusyError(`write failed: ${this.#stalledWrites} writes wait for a memtable flush, limit is ${limits.pendingWritesMax}`);
    }
    this.#stalledWrites++;
    return new Promise<void>((resolve) => this.#stallWaiters.push(resolve)).then(async () => {
      this.#stalledWrites--;
      if (this.#state === "open" && !this.#failure && this.#frozen.length >= limits.frozenMemtablesMax) await this.#stall();
    });
  }

  /** Freezes the active memtable if `entries` would not fit in it. */
  #ensureRoom(entries: readonly BatchEntry[]): void {
    let needed = 0;
    for (const entry of entries) needed += Memtable.recordBytesMax(entry.key.length, entry.payload.length);
    const memtable = this.#active.memtable;
    if (memtable.arenaBytes - memtable.usedBytes >= needed) return;
    this.#rotate();
  }

  #append(entries: readonly BatchEntry[]): Promise<void> {
    const firstSequence = this.#nextSequence;
    this.#nextSequence += entries.length;
    this.#log.writer.addRecord(encodeBatch(firstSequence, entries, this.#batchWriter));
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      const inserted = this.#active.memtable.insert(entry.key, firstSequence + i, entry.kind, entry.payload);
      assert(inserted, "memtable room was reserved before the write");
    }
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.#scheduleCommit();
    return done;
  }

  #scheduleCommit(): void {
    if (this.config.fsync === "batch" && this.config.fsyncBatchWindowMs > 0) {
      this.#commitTimer ??= this.#clock.setTimer(this.config.fsyncBatchWindowMs, () => {
        this.#commitTimer = undefined;
        this.#commitGroup();
      }, { keepAlive: true });
      return;
    }
    if (this.#commitScheduled) return;
    this.#commitScheduled = true;
    queueMicrotask(() => {
      this.#commitScheduled = false;
      this.#commitGroup();
    });
  }

  /** Writes the pending group to the log, syncs it per policy, and settles its writers. */
  #commitGroup(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    try {
      if (this.#failure) throw this.#failure;
      if (this.config.fsync === "never") this.#log.writer.flush();
      else {
        this.#log.writer.sync();
        this.#logSyncs++;
      }
    } catch (error) {
      this.#fail(error);
      for (const waiter of waiters) waiter.reject(error);
      return;
    }
    for (const waiter of waiters) waiter.resolve();
  }

  /** An IO failure on the write path leaves the store read-only: acknowledging later writes would be a lie. */
  #fail(error: unknown): void {
    this.#failure ??= error instanceof Error ? error : new Error(String(error));
    for (const resolve of this.#stallWaiters.splice(0)) resolve();
  }

  /** Freezes the active memtable and starts a new one with a new log. */
  #rotate(): void {
    if (this.#commitTimer !== undefined) {
      this.#clock.clearTimer(this.#commitTimer);
      this.#commitTimer = undefined;
    }
    this.#commitGroup();
    this.#checkWritable("write");
    const old = this.#active;
    old.memtable.freeze();
    const logNumber = this.#nextFileNumber++;
    const newLog = this.#createLog(logNumber);
    this.#log.writer.close();
    this.#log = newLog;
    const memtable = Memtable.create({ arenaBytes: this.config.memtableBytes, reuse: this.#spareArena });
    this.#spareArena = undefined;
    this.#active = { memtable, logNumberMin: logNumber, references: 0 };
    if (old.memtable.entryCount > 0) this.#frozen.unshift(old);
    this.#scheduleBackgroundWork();
  }

  #createLog(logNumber: number): { writer: LogWriter; handle: FileHandle; number: number } {
    const handle = this.#fs.open(joinPath(this.directory, logFileName(logNumber)), "create");
    // The log's directory entry must be durable before any write in it is acknowledged.
    this.#fs.syncDirectory(this.directory);
    return { writer: new LogWriter(handle), handle, number: logNumber };
  }

  // ---- reads --------------------------------------------------------------------------------

  /**
   * The versions of `key` (tombstones included), newest record first; [] when the key was never
   * written or its versions were purged. Synchronous.
   */
  get(key: KeyInput): Version[] {
    const keyBytes = toKeyBytes("get", key, limits.storeKeyBytesMax);
    if (this.#state === "closed") throw new ClosedError("get failed: store is closed");
    const records = this.#collect(keyBytes);
    if (records.length === 0) return [];
    return resolveRecords(records, this.#rule, true).versions;
  }

  /** Records of `key` from every source, newest first, stopping at the first put record. */
  #collect(key: Uint8Array): StoredRecord[] {
    const collected: StoredRecord[] = [];
    const take = (records: readonly StoredRecord[]): boolean => {
      for (const record of records) {
        collected.push(record);
        if (record.kind === RecordKind.put) return true;
      }
      return false;
    };
    if (take(this.#active.memtable.recordsFor(key, true))) return collected;
    for (const slot of this.#frozen) if (take(slot.memtable.recordsFor(key, true))) return collected;
    for (const table of this.#tables) {
      if (!table.reader.mayContain(key)) {
        this.#bloomSkips++;
        continue;
      }
      if (take(table.reader.recordsFor(key))) return collected;
    }
    return collected;
  }

  /**
   * Ordered iteration over live keys in [start, end), with their resolved versions (keys whose
   * versions are all purged are skipped; tombstones are returned). Sees a consistent snapshot of
   * the records written before the call. Tables stay open until the iteration ends.
   */
  *entries(options: RangeOptions = {}): Generator<StoreEntry> {
    if (this.#state === "closed") throw new ClosedError("entries failed: store is closed");
    const start = options.start === undefined ? undefined : toKeyBytes("entries", options.start, limits.storeKeyBytesMax);
    const end = options.end === undefined ? undefined : toKeyBytes("entries", options.end, limits.storeKeyBytesMax);
    const snapshot = this.#nextSequence - 1;
    const tables = [...this.#tables];
    const memtables = [this.#active, ...this.#frozen];
    for (const table of tables) table.references++;
    for (const slot of memtables) slot.references++;
    try {
      const sources: Iterable<StoredRecord>[] = [
        ...memtables.map((slot) => slot.memtable.records(start)),
        ...tables.map((table) => table.reader.records(start)),
      ];
      const visible = filterRecords(mergeRecords(sources), snapshot, end);
      for (const run of groupByKey(visible)) {
        const { versions } = resolveRecords(run, this.#rule, true);
        if (versions.length > 0) yield { key: run[0]!.key.slice(), versions };
      }
    } finally {
      for (const table of tables) this.#release(table);
      for (const slot of memtables) slot.references--;
    }
  }

  /**
   * Folds every live key (tombstones included) of a snapshot taken at the call, in a pool
   * thread (scan_job.ts): the active memtable is frozen so that every source is immutable, the
   * sources stay pinned until the job ends, and the store keeps taking writes meanwhile. The
   * snapshot is taken synchronously, before the returned promise first yields.
   * Throws (rejects) when the store is closed or has failed.
   */
  scan(folder: FolderReference, params: unknown): Promise<unknown> {
    try {
      if (this.#state === "closed") throw new ClosedError("scan failed: store is closed");
      if (this.#active.memtable.entryCount > 0) this.#rotate();
    } catch (error) {
      return Promise.reject(error);
    }
    const tables = [...this.#tables];
    const memtables = [...this.#frozen];
    for (const table of tables) table.references++;
    for (const slot of memtables) slot.references++;
    const release = () => {
      for (const table of tables) this.#release(table);
      for (const slot of memtables) slot.references--;
    };
    const job = this.#jobs.scan({
      memtables: memtables.map((slot) => slot.memtable.buffer),
      tablePaths: tables.map((table) => table.reader.path),
      mergeRule: this.config.mergeRule,
      folder,
      params,
    });
    job.then(release, release);
    return job;
  }

  #release(table: TableSlot): void {
    table.references--;
    if (table.references === 0 && table.obsolete) this.#deleteTable(table);
  }

  // ---- background work ----------------------------------------------------------------------

  /**
   * Starts a flush if none runs and a memtable is frozen, and a compaction if none runs and one
   * is due. They run side by side: under sustained writes flushes never stop, and compaction
   * must not wait for them or the table count (and every read's cost) grows without bound. A
   * flush only adds a table in front; a compaction swaps the contiguous run it picked, found
   * again by identity when it ends, so neither disturbs the other.
   */
  #scheduleBackgroundWork(): void {
    if (this.#failure || this.#state === "closed") return;
    if (!this.#flushing && this.#frozen.length > 0) {
      this.#flushing = this.#track(this.#flushOldest(), () => (this.#flushing = undefined));
    }
    if (!this.#compacting && this.#state === "open") {
      const run = pickCompaction(
        this.#tables.map((table) => table.meta.fileBytes),
        { tablesMin: this.config.compactionTablesMin, tablesMax: this.config.compactionTablesMax, sizeRatio: this.config.compactionSizeRatio },
      );
      if (run) this.#compacting = this.#track(this.#compactRun(run[0], run[1]), () => (this.#compacting = undefined));
    }
  }

  /** Settles `work` into the store: a failure makes it read-only; either way, look for more work. */
  #track(work: Promise<void>, clear: () => void): Promise<void> {
    return work
      .catch((error: unknown) => this.#fail(error))
      .finally(() => {
        clear();
        if (this.#state === "open") this.#scheduleBackgroundWork();
      });
  }

  async #flushOldest(): Promise<void> {
    const slot = this.#frozen[this.#frozen.length - 1]!;
    const fileNumber = this.#nextFileNumber++;
    const path = joinPath(this.directory, tableFileName(fileNumber));
    const summary = await this.#jobs.flush({ memtable: slot.memtable.buffer, path, bloomBitsPerKey: this.config.bloomBitsPerKey });
    this.#fs.syncDirectory(this.directory);
    const table = this.#openTable(fileNumber, summary);
    const remaining = this.#frozen.slice(0, -1);
    const logNumberMin = Math.min(this.#active.logNumberMin, ...remaining.map((s) => s.logNumberMin));
    this.#commitManifest({
      lastSequence: Math.max(this.#manifest.lastSequence, summary.sequenceMax),
      logNumberMin,
      tables: [table, ...this.#tables],
    });
    this.#frozen = remaining;
    if (slot.references === 0 && slot.memtable.arenaBytes === this.config.memtableBytes) this.#spareArena = slot.memtable.buffer;
    this.#flushes++;
    this.#removeObsoleteLogs(logNumberMin);
    for (const resolve of this.#stallWaiters.splice(0)) resolve();
  }

  async #compactRun(start: number, end: number): Promise<void> {
    const inputs = this.#tables.slice(start, end);
    const bottommost = end === this.#tables.length;
    const fileNumber = this.#nextFileNumber++;
    const path = joinPath(this.directory, tableFileName(fileNumber));
    const summary = await this.#jobs.compact({
      inputPaths: inputs.map((table) => table.reader.path),
      outputPath: path,
      bloomBitsPerKey: this.config.bloomBitsPerKey,
      bottommost,
      mergeRule: this.config.mergeRule,
    });
    this.#fs.syncDirectory(this.directory);
    // Only this compaction removes tables, and flushes only add in front: the run is intact.
    const at = this.#tables.indexOf(inputs[0]!);
    assert(at >= 0 && this.#tables[at + inputs.length - 1] === inputs[inputs.length - 1], "compaction inputs moved");
    const output = summary.recordCount > 0 ? [this.#openTable(fileNumber, summary)] : [];
    if (summary.recordCount === 0) this.#fs.remove(path);
    const tables = [...this.#tables.slice(0, at), ...output, ...this.#tables.slice(at + inputs.length)];
    this.#commitManifest({ tables });
    this.#compactions++;
    for (const table of inputs) {
      table.obsolete = true;
      if (table.references === 0) this.#deleteTable(table);
    }
  }

  #openTable(fileNumber: number, summary: TableSummary): TableSlot {
    const { path: _path, ...rest } = summary;
    const meta: TableMeta = { fileNumber, ...rest };
    const reader = SSTableReader.open(this.#fs, summary.path, { cache: this.#cache, fileNumber });
    return { meta, reader, references: 0, obsolete: false };
  }

  #commitManifest(change: { lastSequence?: number; logNumberMin?: number; tables: TableSlot[] }): void {
    const next: ManifestState = {
      ...this.#manifest,
      nextFileNumber: this.#nextFileNumber,
      lastSequence: change.lastSequence ?? this.#manifest.lastSequence,
      logNumberMin: change.logNumberMin ?? this.#manifest.logNumberMin,
      tables: change.tables.map((table) => table.meta),
    };
    writeManifest(this.#fs, this.directory, next);
    this.#manifest = next;
    this.#tables = change.tables;
  }

  #deleteTable(table: TableSlot): void {
    table.reader.close();
    this.#fs.remove(table.reader.path);
  }

  #removeObsoleteLogs(logNumberMin: number): void {
    for (const name of this.#fs.list(this.directory)) {
      const parsed = parseFileName(name);
      if (parsed.kind === "log" && parsed.fileNumber < logNumberMin) this.#fs.remove(joinPath(this.directory, name));
    }
  }

  /** Flushes the active memtable (if it holds anything) and waits until every frozen one is in a table. */
  async flush(): Promise<void> {
    this.#checkWritable("flush");
    if (this.#active.memtable.entryCount > 0) this.#rotate();
    while (this.#frozen.length > 0 || this.#flushing) {
      if (this.#failure) throw this.#failure;
      this.#scheduleBackgroundWork();
      await this.#flushing;
    }
    if (this.#failure) throw this.#failure;
  }

  /** Resolves once no flush or compaction runs and none is due (background work has caught up). */
  async idle(): Promise<void> {
    while (this.#flushing || this.#compacting) {
      await Promise.all([this.#flushing, this.#compacting]);
      if (this.#failure) throw this.#failure;
    }
  }

  /** Flushes, then merges every table into one (a major compaction). */
  async compact(): Promise<void> {
    await this.flush();
    while (this.#compacting) await this.#compacting;
    if (this.#tables.length > 1 && !this.#failure) {
      this.#compacting = this.#track(this.#compactRun(0, this.#tables.length), () => (this.#compacting = undefined));
      await this.#compacting;
    }
    if (this.#failure) throw this.#failure;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /**
   * Waits for pending writes and the running background job, then closes files and releases the
   * directory's lock. Unflushed memtables are not flushed: their logs are replayed at the next open.
   */
  async close(): Promise<void> {
    if (this.#state !== "open") return;
    this.#state = "closing";
    if (this.#commitTimer !== undefined) this.#clock.clearTimer(this.#commitTimer);
    this.#commitTimer = undefined;
    this.#commitGroup();
    for (const resolve of this.#stallWaiters.splice(0)) resolve();
    while (this.#flushing || this.#compacting) await Promise.all([this.#flushing, this.#compacting]);
    this.#state = "closed";
    try {
      this.#log.writer.close();
      for (const table of this.#tables) table.reader.close();
    } finally {
      this.#lock.release();
    }
    if (this.#ownsJobs) await this.#jobs.close();
  }

  get closed(): boolean {
    return this.#state === "closed";
  }

  /** The IO error that made the store read-only, if any. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  stats(): StoreStats {
    const memtable = this.#active.memtable;
    return {
      sequence: this.#nextSequence - 1,
      memtable: { entries: memtable.entryCount, usedBytes: memtable.usedBytes, arenaBytes: memtable.arenaBytes },
      frozenMemtables: this.#frozen.length,
      backgroundJobs: (this.#flushing || this.#frozen.length > 0 ? 1 : 0) + (this.#compacting ? 1 : 0),
      tables: this.#tables.map((t) => ({ fileNumber: t.meta.fileNumber, fileBytes: t.meta.fileBytes, records: t.meta.recordCount })),
      tableBytes: this.#tables.reduce((sum, t) => sum + t.meta.fileBytes, 0),
      flushes: this.#flushes,
      compactions: this.#compactions,
      logSyncs: this.#logSyncs,
      bloomSkips: this.#bloomSkips,
      blockCache: this.#cache.stats(),
      recovery: this.#recovery,
    };
  }
}

function* filterRecords(records: Iterable<StoredRecord>, snapshot: number, end: Uint8Array | undefined): Generator<StoredRecord> {
  for (const record of records) {
    if (end && compareBytes(record.key, end) >= 0) return;
    if (record.sequence <= snapshot) yield record;
  }
}

// ---- recovery -----------------------------------------------------------------------------------

interface Recovered {
  readonly manifest: ManifestState;
  readonly cache: BlockCache;
  readonly tables: TableSlot[];
  readonly frozen: MemtableSlot[];
  readonly nextFileNumber: number;
  readonly nextSequence: number;
  readonly recovery: StoreStats["recovery"];
}

/**
 * Brings a directory to a consistent state: the manifest's tables, plus memtables rebuilt from the
 * live logs (frozen, to be flushed in the background). Removes files no manifest references.
 * REQUIRES: the directory exists and its lock is held.
 */
function recover(fs: FileSystem, directory: string, config: StoreConfig): Recovered {
  const names = fs.list(directory);
  let manifest = readManifest(fs, directory);
  if (!manifest) {
    const strays = names.filter((name) => ["log", "table"].includes(parseFileName(name).kind));
    if (strays.length > 0) {
      throw new CorruptionError(`store files without a MANIFEST (${strays.slice(0, 3).join(", ")})`, joinPath(directory, "MANIFEST"), 0);
    }
    manifest = emptyManifest();
    writeManifest(fs, directory, manifest);
  }
  const liveTables = new Set(manifest.tables.map((table) => table.fileNumber));
  let highestFileNumber = manifest.nextFileNumber - 1;
  const logs: number[] = [];
  for (const name of names) {
    const { kind, fileNumber } = parseFileName(name);
    highestFileNumber = Math.max(highestFileNumber, fileNumber);
    const stray = kind === "temporary" || (kind === "table" && !liveTables.has(fileNumber)) || (kind === "log" && fileNumber < manifest.logNumberMin);
    if (stray) fs.remove(joinPath(directory, name));
    else if (kind === "log") logs.push(fileNumber);
  }
  const cache = new BlockCache({ capacityBytes: config.blockCacheBytes });
  const tables = manifest.tables.map((meta): TableSlot => ({
    meta,
    reader: SSTableReader.open(fs, joinPath(directory, tableFileName(meta.fileNumber)), { cache, fileNumber: meta.fileNumber }),
    references: 0,
    obsolete: false,
  }));
  const replay = replayLogs(fs, directory, logs.sort((a, b) => a - b), manifest.lastSequence, config.memtableBytes);
  return {
    manifest,
    cache,
    tables,
    frozen: replay.frozen,
    nextFileNumber: highestFileNumber + 1,
    nextSequence: Math.max(manifest.lastSequence, replay.sequenceMax) + 1,
    recovery: { recordsReplayed: replay.records, tornTails: replay.tornTails },
  };
}

function replayLogs(fs: FileSystem, directory: string, logNumbers: readonly number[], lastSequence: number, arenaBytes: number) {
  const frozen: MemtableSlot[] = [];
  const tornTails: { path: string; offset: number; reason: string }[] = [];
  let current: MemtableSlot | undefined;
  let sequenceMax = 0;
  let records = 0;
  for (const logNumber of logNumbers) {
    const path = joinPath(directory, logFileName(logNumber));
    const result = readLog(fs, path);
    if (result.tornTail) tornTails.push({ path, ...result.tornTail });
    result.records.forEach((bytes, index) => {
      let batch: StoredRecord[];
      try {
        batch = decodeBatch(bytes);
      } catch (error) {
        throw new CorruptionError(`undecodable batch (${(error as Error).message})`, path, result.recordOffsets[index] ?? 0);
      }
      for (const record of batch) {
        if (record.sequence <= lastSequence) continue; // already in a table
        if (!current || !current.memtable.insert(record.key, record.sequence, record.kind, record.payload)) {
          if (current) frozen.unshift(current);
          current = { memtable: Memtable.create({ arenaBytes }), logNumberMin: logNumber, references: 0 };
          assert(current.memtable.insert(record.key, record.sequence, record.kind, record.payload), "record fits an empty memtable");
        }
        sequenceMax = Math.max(sequenceMax, record.sequence);
        records++;
      }
    });
  }
  if (current) frozen.unshift(current);
  for (const slot of frozen) slot.memtable.freeze();
  return { frozen, tornTails, sequenceMax, records };
}
