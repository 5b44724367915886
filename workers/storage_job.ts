/**
 * piscina task file: runs a store's flush, compaction and scan jobs in a pool thread against the real
 * file system. Thread entry point only; the work lives in src/storage/table_jobs.ts.
 */
import { RealFileSystem } from "../src/io/real_file_system.ts";
import { lowerThisThreadPriority } from "../src/io/thread_priority.ts";
import { runScan, type ScanRequest } from "../src/storage/scan_job.ts";
import { runCompaction, runFlush, type CompactionRequest, type FlushRequest, type TableSummary } from "../src/storage/table_jobs.ts";

export type StorageJobMessage =
  | { readonly kind: "flush"; readonly request: FlushRequest }
  | { readonly kind: "compact"; readonly request: CompactionRequest }
  | { readonly kind: "scan"; readonly request: ScanRequest };

const fs = new RealFileSystem();

/**
 * Pool threads yield the CPU to the node threads: on a host with fewer cores than threads, a
 * compaction at equal priority took a core from the request path for seconds (throughput fell to
 * half for the windows it ran in). At niceness 10 it runs on what the node threads leave idle,
 * and a store whose flush falls behind stalls its writes, which leaves the CPU idle for the flush.
 */
export const POOL_THREAD_NICENESS = 10;
lowerThisThreadPriority(POOL_THREAD_NICENESS);

export default async function storageJob(message: StorageJobMessage): Promise<unknown> {
  if (message.kind === "flush") return runFlush(fs, message.request);
  if (message.kind === "scan") return runScan(fs, message.request);
  return runCompaction(fs, message.request);
}
