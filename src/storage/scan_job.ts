/**
 * A scan job: a pinned snapshot of a store (frozen memtables and tables, all immutable while the
 * job runs) read in a pool thread and folded by a caller-named function into a small result, so a
 * whole-store pass (a Merkle tree rebuild) costs the store's thread nothing but the pinning.
 *
 * As with merge rules, the folder travels as a reference (module URL plus export name) and each
 * thread imports it; the storage engine knows nothing of what it computes.
 */
import type { FileSystem } from "../io/file_system.ts";
import { Memtable } from "./memtable.ts";
import { groupByKey, mergeRecords } from "./merge_iterator.ts";
import { loadMergeRule, type MergeRuleReference } from "./merge_rule.ts";
import { loadReference, type ModuleReference } from "./module_reference.ts";
import type { StoredRecord } from "./record.ts";
import { resolveRecords } from "./record_resolution.ts";
import { SSTableReader } from "./sstable_reader.ts";
import type { Version } from "./version_set_format.ts";

/** One live key of the snapshot with its resolved versions (tombstones included). */
export interface ScannedEntry {
  readonly key: Uint8Array;
  readonly versions: Version[];
}

/** Folds a snapshot's entries (in key order) with `params` into a structured-cloneable result. */
export interface EntryFolder {
  fold(params: unknown, entries: Iterable<ScannedEntry>): unknown;
}

export type FolderReference = ModuleReference;

export interface ScanRequest {
  /** Frozen memtables, newest first. */
  readonly memtables: readonly SharedArrayBuffer[];
  /** Table paths, newest first. */
  readonly tablePaths: readonly string[];
  readonly mergeRule: MergeRuleReference;
  readonly folder: FolderReference;
  readonly params: unknown;
}

/** Imports the module a reference names (once per thread) and returns the folder it exports. */
export function loadFolder(reference: FolderReference): Promise<EntryFolder> {
  const isFolder = (value: unknown): value is EntryFolder => typeof (value as EntryFolder | undefined)?.fold === "function";
  return loadReference("load folder", reference, isFolder, "an object with a fold() method");
}

/** Runs a scan job against `fs`: merges the snapshot's sources, resolves each key, folds. */
export async function runScan(fs: FileSystem, request: ScanRequest): Promise<unknown> {
  const rule = await loadMergeRule(request.mergeRule);
  const folder = await loadFolder(request.folder);
  const readers = request.tablePaths.map((path) => SSTableReader.open(fs, path));
  try {
    const sources: Iterable<StoredRecord>[] = [
      ...request.memtables.map((buffer) => Memtable.attach(buffer).records()),
      ...readers.map((reader) => reader.records()),
    ];
    function* entries(): Generator<ScannedEntry> {
      for (const run of groupByKey(mergeRecords(sources))) {
        const { versions } = resolveRecords(run, rule, true);
        if (versions.length > 0) yield { key: run[0]!.key.slice(), versions };
      }
    }
    return folder.fold(request.params, entries());
  } finally {
    for (const reader of readers) reader.close();
  }
}
