/**
 * What a store reports about itself: sizes of its memtables and tables, background work due or
 * running, counters of flushes, compactions, log syncs, Bloom filter skips and the block cache,
 * and what recovery found at open. A snapshot: reading it changes nothing.
 */
import type { RecoveryReport } from "./store_slots.ts";
import type { StoreState } from "./store_state.ts";

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
  readonly recovery: RecoveryReport;
  /**
   * Memory the store holds outside the JS heap: memtable arena bytes in use (active and frozen;
   * the arenas are SharedArrayBuffers), block cache bytes, and every table's Bloom filter and
   * decoded index.
   */
  readonly memory: { readonly memtableBytes: number; readonly blockCacheBytes: number; readonly filterBytes: number; readonly indexBytes: number };
}

export function storeStats(store: StoreState): StoreStats {
  const memtable = store.active.memtable;
  return {
    sequence: store.nextSequence - 1,
    memtable: { entries: memtable.entryCount, usedBytes: memtable.usedBytes, arenaBytes: memtable.arenaBytes },
    frozenMemtables: store.frozen.length,
    backgroundJobs: (store.flushing || store.frozen.length > 0 ? 1 : 0) + (store.compacting ? 1 : 0),
    tables: store.tables.map((t) => ({ fileNumber: t.meta.fileNumber, fileBytes: t.meta.fileBytes, records: t.meta.recordCount })),
    tableBytes: store.tables.reduce((sum, t) => sum + t.meta.fileBytes, 0),
    flushes: store.flushes,
    compactions: store.compactions,
    logSyncs: store.logSyncs,
    bloomSkips: store.bloomSkips,
    blockCache: store.cache.stats(),
    recovery: store.recovery,
    memory: memoryOf(store),
  };
}

function memoryOf(store: StoreState): StoreStats["memory"] {
  let memtableBytes = store.active.memtable.usedBytes;
  for (const slot of store.frozen) memtableBytes += slot.memtable.usedBytes;
  let filterBytes = 0;
  let indexBytes = 0;
  for (const table of store.tables) {
    const held = table.reader.memoryBytes;
    filterBytes += held.filter;
    indexBytes += held.index;
  }
  return { memtableBytes, blockCacheBytes: store.cache.stats().bytes, filterBytes, indexBytes };
}
