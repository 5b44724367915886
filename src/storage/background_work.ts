/**
 * A store's background work: the flush of its oldest frozen memtable and the compaction of a run
 * of its tables (compaction_picker.ts), each run by the store's StorageJobs (table_jobs.ts) and
 * at most one of each at a time. When a job's output file is written, this side makes it visible:
 * directory sync, table opened, manifest committed (live_files.ts), and then frees what it
 * replaced. A failed job leaves the store read-only; whichever way a job ends, the next is looked
 * for while the store is open.
 */
import { assert } from "../util/assert.ts";
import { joinPath } from "../io/file_system.ts";
import { pickCompaction } from "./compaction_picker.ts";
import { tableFileName } from "./manifest.ts";
import { commitManifest, deleteTable, openTable, removeObsoleteLogs } from "./live_files.ts";
import type { StoreState } from "./store_state.ts";

/**
 * Starts a flush if none runs and a memtable is frozen, and a compaction if none runs and one
 * is due. They run side by side: under sustained writes flushes never stop, and compaction
 * must not wait for them or the table count (and every read's cost) grows without bound. A
 * flush only adds a table in front; a compaction swaps the contiguous run it picked, found
 * again by identity when it ends, so neither disturbs the other.
 */
export function scheduleBackgroundWork(store: StoreState): void {
  if (store.failure || store.state === "closed") return;
  if (!store.flushing && store.frozen.length > 0) {
    store.flushing = track(store, flushOldest(store), () => (store.flushing = undefined));
  }
  if (!store.compacting && store.state === "open") {
    const run = pickCompaction(
      store.tables.map((table) => table.meta.fileBytes),
      { tablesMin: store.config.compactionTablesMin, tablesMax: store.config.compactionTablesMax, sizeRatio: store.config.compactionSizeRatio },
    );
    if (run) store.compacting = track(store, compactRun(store, run[0], run[1]), () => (store.compacting = undefined));
  }
}

/** Settles `work` into the store: a failure makes it read-only; either way, look for more work. */
export function track(store: StoreState, work: Promise<void>, clear: () => void): Promise<void> {
  return work
    .catch((error: unknown) => store.fail(error))
    .finally(() => {
      clear();
      if (store.state === "open") scheduleBackgroundWork(store);
    });
}

async function flushOldest(store: StoreState): Promise<void> {
  const slot = store.frozen[store.frozen.length - 1]!;
  const fileNumber = store.nextFileNumber++;
  const path = joinPath(store.directory, tableFileName(fileNumber));
  const summary = await store.jobs.flush({ memtable: slot.memtable.buffer, path, bloomBitsPerKey: store.config.bloomBitsPerKey });
  store.fs.syncDirectory(store.directory);
  const table = openTable(store, fileNumber, summary);
  const remaining = store.frozen.slice(0, -1);
  const logNumberMin = Math.min(store.active.logNumberMin, ...remaining.map((s) => s.logNumberMin));
  commitManifest(store, {
    lastSequence: Math.max(store.manifest.lastSequence, summary.sequenceMax),
    logNumberMin,
    tables: [table, ...store.tables],
  });
  store.frozen = remaining;
  if (slot.references === 0 && slot.memtable.arenaBytes === store.config.memtableBytes) store.spareArena = slot.memtable.buffer;
  store.flushes++;
  removeObsoleteLogs(store, logNumberMin);
  for (const resolve of store.stallWaiters.splice(0)) resolve();
}

/** Merges tables [start, end) (newest first) into one; bottommost when the run ends at the oldest table. */
export async function compactRun(store: StoreState, start: number, end: number): Promise<void> {
  const inputs = store.tables.slice(start, end);
  const bottommost = end === store.tables.length;
  const fileNumber = store.nextFileNumber++;
  const path = joinPath(store.directory, tableFileName(fileNumber));
  const summary = await store.jobs.compact({
    inputPaths: inputs.map((table) => table.reader.path),
    outputPath: path,
    bloomBitsPerKey: store.config.bloomBitsPerKey,
    bottommost,
    mergeRule: store.config.mergeRule,
  });
  store.fs.syncDirectory(store.directory);
  // Only this compaction removes tables, and flushes only add in front: the run is intact.
  const at = store.tables.indexOf(inputs[0]!);
  assert(at >= 0 && store.tables[at + inputs.length - 1] === inputs[inputs.length - 1], "compaction inputs moved");
  const output = summary.recordCount > 0 ? [openTable(store, fileNumber, summary)] : [];
  if (summary.recordCount === 0) store.fs.remove(path);
  const tables = [...store.tables.slice(0, at), ...output, ...store.tables.slice(at + inputs.length)];
  commitManifest(store, { tables });
  store.compactions++;
  for (const table of inputs) {
    table.obsolete = true;
    if (table.references === 0) deleteTable(store, table);
  }
}
