/**
 * Changes to the set of files a store reads: a new table opened into a slot, a manifest change
 * written (manifest.ts: atomic rewrite) and then adopted in memory with its table list, and files
 * removed once nothing needs them: an obsolete table when its last reader lets go, logs older
 * than every memtable's records.
 */
import { joinPath } from "../io/file_system.ts";
import { parseFileName, writeManifest, type ManifestState, type TableMeta } from "./manifest.ts";
import { SSTableReader } from "./sstable_reader.ts";
import type { StoreState, TableSlot } from "./store_state.ts";
import type { TableSummary } from "./table_jobs.ts";

export function openTable(store: StoreState, fileNumber: number, summary: TableSummary): TableSlot {
  const { path: _path, ...rest } = summary;
  const meta: TableMeta = { fileNumber, ...rest };
  const reader = SSTableReader.open(store.fs, summary.path, { cache: store.cache, fileNumber });
  return { meta, reader, references: 0, obsolete: false };
}

export function commitManifest(store: StoreState, change: { lastSequence?: number; logNumberMin?: number; tables: TableSlot[] }): void {
  const next: ManifestState = {
    ...store.manifest,
    nextFileNumber: store.nextFileNumber,
    lastSequence: change.lastSequence ?? store.manifest.lastSequence,
    logNumberMin: change.logNumberMin ?? store.manifest.logNumberMin,
    tables: change.tables.map((table) => table.meta),
  };
  writeManifest(store.fs, store.directory, next);
  store.manifest = next;
  store.tables = change.tables;
}

export function deleteTable(store: StoreState, table: TableSlot): void {
  table.reader.close();
  store.fs.remove(table.reader.path);
}

/** Ends one reader's hold on `table`, deleting it if it is obsolete and that was the last. */
export function releaseTable(store: StoreState, table: TableSlot): void {
  table.references--;
  if (table.references === 0 && table.obsolete) deleteTable(store, table);
}

export function removeObsoleteLogs(store: StoreState, logNumberMin: number): void {
  for (const name of store.fs.list(store.directory)) {
    const parsed = parseFileName(name);
    if (parsed.kind === "log" && parsed.fileNumber < logNumberMin) store.fs.remove(joinPath(store.directory, name));
  }
}
