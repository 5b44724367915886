/**
 * StorageJobs on a piscina pool: flush and compaction run in pool threads against the real file
 * system. A frozen memtable's SharedArrayBuffer is shared with the job, not copied.
 */
import type { Piscina } from "piscina";
import { createJobPool } from "./job_pool.ts";
import { workerFileUrl } from "./worker_file.ts";
import type { StorageJobs } from "../storage/storage_jobs.ts";
import type { ScanRequest } from "../storage/scan_job.ts";
import type { CompactionRequest, FlushRequest, TableSummary } from "../storage/table_jobs.ts";

/** Pool threads by default: a store runs at most one flush and one compaction side by side. */
export const storageJobThreadsDefault = 2;

export interface PiscinaStorageJobsOptions {
  /** Pool threads. @default 2 (a store runs one flush and one compaction side by side) */
  readonly threads?: number;
  /**
   * V8 heap bound of each pool thread, in MiB. Jobs stream their input and output in bounded
   * chunks, so a small heap suffices; a lower bound means more frequent garbage collection.
   * @default 64
   */
  readonly heapMib?: number;
}

export class PiscinaStorageJobs implements StorageJobs {
  readonly #pool: Piscina;

  constructor(options: PiscinaStorageJobsOptions = {}) {
    const threads = options.threads ?? storageJobThreadsDefault;
    this.#pool = createJobPool({
      filename: workerFileUrl("storage_job"),
      threads,
      idleTimeoutMs: 60_000,
      resourceLimits: { maxOldGenerationSizeMb: options.heapMib ?? 64, maxYoungGenerationSizeMb: 8 },
    });
  }

  flush(request: FlushRequest): Promise<TableSummary> {
    return this.#pool.run({ kind: "flush", request });
  }

  compact(request: CompactionRequest): Promise<TableSummary> {
    return this.#pool.run({ kind: "compact", request });
  }

  scan(request: ScanRequest): Promise<unknown> {
    return this.#pool.run({ kind: "scan", request });
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }
}
