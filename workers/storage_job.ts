/**
 * piscina task file: runs a store's flush and compaction jobs in a pool thread against the real
 * file system. Thread entry point only; the work lives in src/storage/table_jobs.ts.
 */
import { RealFileSystem } from "../src/io/real_file_system.ts";
import { runCompaction, runFlush, type CompactionRequest, type FlushRequest, type TableSummary } from "../src/storage/table_jobs.ts";

export type StorageJobMessage =
  | { readonly kind: "flush"; readonly request: FlushRequest }
  | { readonly kind: "compact"; readonly request: CompactionRequest };

const fs = new RealFileSystem();

export default async function storageJob(message: StorageJobMessage): Promise<TableSummary> {
  if (message.kind === "flush") return runFlush(fs, message.request);
  return runCompaction(fs, message.request);
}
