/**
 * Reads of a snapshot of the whole store: ordered iteration over a key range in this thread, and
 * scans folded in a pool thread (scan_job.ts). Either pins its sources (memtables and tables, by
 * reference count) when it starts and lets go when it ends, so a flush cannot reuse a pinned
 * arena and a compaction's inputs stay on disk (live_files.ts deletes them at the last release).
 */
import { compareBytes } from "../util/bytes.ts";
import { ClosedError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import { releaseTable } from "./live_files.ts";
import { rotate } from "./memtable_rotation.ts";
import { groupByKey, mergeRecords } from "./merge_iterator.ts";
import type { StoredRecord } from "./record.ts";
import { resolveRecords } from "./record_resolution.ts";
import type { FolderReference } from "./scan_job.ts";
import type { StoreState } from "./store_state.ts";
import { toKeyBytes, type KeyInput } from "./store_input.ts";
import type { Version } from "./version_set_format.ts";

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

/**
 * Ordered iteration over live keys in [start, end), with their resolved versions (keys whose
 * versions are all purged are skipped; tombstones are returned). Sees a consistent snapshot of
 * the records written before the call. Tables stay open until the iteration ends.
 */
export function* iterateEntries(store: StoreState, options: RangeOptions): Generator<StoreEntry> {
  if (store.state === "closed") throw new ClosedError("entries failed: store is closed");
  const start = options.start === undefined ? undefined : toKeyBytes("entries", options.start, limits.storeKeyBytesMax);
  const end = options.end === undefined ? undefined : toKeyBytes("entries", options.end, limits.storeKeyBytesMax);
  const snapshot = store.nextSequence - 1;
  const tables = [...store.tables];
  const memtables = [store.active, ...store.frozen];
  for (const table of tables) table.references++;
  for (const slot of memtables) slot.references++;
  try {
    const sources: Iterable<StoredRecord>[] = [
      ...memtables.map((slot) => slot.memtable.records(start)),
      ...tables.map((table) => table.reader.records(start)),
    ];
    const visible = filterRecords(mergeRecords(sources), snapshot, end);
    for (const run of groupByKey(visible)) {
      const { versions } = resolveRecords(run, store.rule, true);
      if (versions.length > 0) yield { key: run[0]!.key.slice(), versions };
    }
  } finally {
    for (const table of tables) releaseTable(store, table);
    for (const slot of memtables) slot.references--;
  }
}

/**
 * Folds every live key (tombstones included) of a snapshot taken at the call, in a pool thread:
 * the active memtable is frozen so that every source is immutable, the sources stay pinned until
 * the job ends, and the store keeps taking writes meanwhile. The snapshot is taken synchronously,
 * before the returned promise first yields. Rejects when the store is closed or has failed.
 */
export function scanSnapshot(store: StoreState, folder: FolderReference, params: unknown): Promise<unknown> {
  try {
    if (store.state === "closed") throw new ClosedError("scan failed: store is closed");
    if (store.active.memtable.entryCount > 0) rotate(store);
  } catch (error) {
    return Promise.reject(error);
  }
  const tables = [...store.tables];
  const memtables = [...store.frozen];
  for (const table of tables) table.references++;
  for (const slot of memtables) slot.references++;
  const release = () => {
    for (const table of tables) releaseTable(store, table);
    for (const slot of memtables) slot.references--;
  };
  const job = store.jobs.scan({
    memtables: memtables.map((slot) => slot.memtable.buffer),
    tablePaths: tables.map((table) => table.reader.path),
    mergeRule: store.config.mergeRule,
    folder,
    params,
  });
  job.then(release, release);
  return job;
}

function* filterRecords(records: Iterable<StoredRecord>, snapshot: number, end: Uint8Array | undefined): Generator<StoredRecord> {
  for (const record of records) {
    if (end && compareBytes(record.key, end) >= 0) return;
    if (record.sequence <= snapshot) yield record;
  }
}
