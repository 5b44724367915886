/**
 * Where a store's flushes, compactions and scans run. The runtime supplies a piscina pool
 * (src/runtime/piscina_storage_jobs.ts); the simulator and single-threaded tests run them inline
 * against the store's own (possibly simulated) file system.
 */
import type { FileSystem } from "../io/file_system.ts";
import { runCompaction, runFlush, type CompactionRequest, type FlushRequest, type TableSummary } from "./table_jobs.ts";
import { runScan, type ScanRequest } from "./scan_job.ts";

export interface StorageJobs {
  flush(request: FlushRequest): Promise<TableSummary>;
  compact(request: CompactionRequest): Promise<TableSummary>;
  /** Folds a pinned snapshot of the store (scan_job.ts). */
  scan(request: ScanRequest): Promise<unknown>;
  /** Releases threads the runner owns. Jobs in flight finish first. */
  close(): Promise<void>;
}

/** Runs jobs synchronously in the calling thread (deterministic; used by the simulator). */
export class InlineStorageJobs implements StorageJobs {
  readonly #fs: FileSystem;

  constructor(fs: FileSystem) {
    this.#fs = fs;
  }

  flush(request: FlushRequest): Promise<TableSummary> {
    try {
      return Promise.resolve(runFlush(this.#fs, request));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  compact(request: CompactionRequest): Promise<TableSummary> {
    return runCompaction(this.#fs, request);
  }

  scan(request: ScanRequest): Promise<unknown> {
    return runScan(this.#fs, request);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
