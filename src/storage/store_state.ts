/**
 * The state of one open store, shared by the files that implement its jobs (write_group.ts,
 * memtable_rotation.ts, background_work.ts, key_lookup.ts, ...): what it was opened with, the
 * memtables, tables and commit log it reads and writes, the pending writes, the running
 * background work, and the counters its stats report.
 *
 * Only `Store` (store.ts) creates one, and only the storage folder's store files touch it; like
 * the store itself, it is used from the thread that opened the store. Creating one opens the
 * first commit log (a new file, then a directory sync).
 */
import { ByteWriter } from "../util/bytes.ts";
import { ClosedError } from "../util/errors.ts";
import { joinPath, type FileHandle, type FileSystem } from "../io/file_system.ts";
import type { Clock, TimerHandle } from "../io/clock.ts";
import type { BlockCache } from "./block_cache.ts";
import { LogWriter } from "./log_writer.ts";
import { logFileName, type ManifestState } from "./manifest.ts";
import { Memtable } from "./memtable.ts";
import type { MergeRule } from "./merge_rule.ts";
import type { StorageJobs } from "./storage_jobs.ts";
import type { StoreConfig } from "./store_config.ts";
import type { MemtableSlot, Recovered, RecoveryReport, TableSlot } from "./store_slots.ts";

export type { MemtableSlot, TableSlot } from "./store_slots.ts";

/** The commit log the active memtable's writes go to. */
export interface OpenLog {
  writer: LogWriter;
  handle: FileHandle;
  number: number;
}

/** A write waiting for its group commit. */
export interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

/** What a store opens with besides its configuration (a subset of StoreOpenOptions). */
export interface StoreContext {
  readonly directory: string;
  readonly fs: FileSystem;
  readonly clock: Clock;
  readonly jobs: StorageJobs;
}

export class StoreState {
  readonly directory: string;
  readonly config: StoreConfig;
  readonly fs: FileSystem;
  readonly clock: Clock;
  readonly jobs: StorageJobs;
  readonly rule: MergeRule;
  readonly cache: BlockCache;
  readonly batchWriter = new ByteWriter(64 * 1024);
  readonly payloadWriter = new ByteWriter(256);

  manifest: ManifestState;
  nextFileNumber: number;
  nextSequence: number;
  active: MemtableSlot;
  /** Frozen memtables, newest first, waiting for their flush. */
  frozen: MemtableSlot[] = [];
  /** Live tables, newest first. */
  tables: TableSlot[];
  log: OpenLog;

  waiters: Waiter[] = [];
  commitScheduled = false;
  commitTimer: TimerHandle | undefined;
  stallWaiters: (() => void)[] = [];
  stalledWrites = 0;
  /** The running flush and the running compaction: at most one of each, side by side. */
  flushing: Promise<void> | undefined;
  compacting: Promise<void> | undefined;
  /** The arena of the last flushed memtable, zeroed and reused by the next one. */
  spareArena: SharedArrayBuffer | undefined;
  state: "open" | "closing" | "closed" = "open";
  failure: Error | undefined;

  flushes = 0;
  compactions = 0;
  logSyncs = 0;
  bloomSkips = 0;
  recovery: RecoveryReport;

  constructor(context: StoreContext, config: StoreConfig, rule: MergeRule, recovered: Recovered) {
    this.directory = context.directory;
    this.config = config;
    this.fs = context.fs;
    this.clock = context.clock;
    this.jobs = context.jobs;
    this.rule = rule;
    this.cache = recovered.cache;
    this.manifest = recovered.manifest;
    this.nextFileNumber = recovered.nextFileNumber;
    this.nextSequence = recovered.nextSequence;
    this.tables = recovered.tables;
    this.frozen = recovered.frozen;
    this.recovery = recovered.recovery;
    const logNumber = this.nextFileNumber++;
    this.log = this.createLog(logNumber);
    this.active = { memtable: Memtable.create({ arenaBytes: config.memtableBytes }), logNumberMin: logNumber, references: 0 };
  }

  checkWritable(action: string): void {
    if (this.state !== "open") throw new ClosedError(`${action} failed: store is closed`);
    if (this.failure) throw this.failure;
  }

  /** An IO failure on the write path leaves the store read-only: acknowledging later writes would be a lie. */
  fail(error: unknown): void {
    const first = this.failure === undefined;
    this.failure ??= error instanceof Error ? error : new Error(String(error));
    for (const resolve of this.stallWaiters.splice(0)) resolve();
    if (first) for (const listener of this.failureListeners) listener(this.failure);
  }

  /** Called once, when the store first fails (see `fail`). */
  readonly failureListeners: ((failure: Error) => void)[] = [];

  createLog(logNumber: number): OpenLog {
    const handle = this.fs.open(joinPath(this.directory, logFileName(logNumber)), "create");
    // The log's directory entry must be durable before any write in it is acknowledged.
    this.fs.syncDirectory(this.directory);
    return { writer: new LogWriter(handle), handle, number: logNumber };
  }
}
