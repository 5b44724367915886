/**
 * The shapes a store's state is made of, shared by its state, its recovery and its stats: a
 * memtable or a table with the readers holding it, what recovery hands the opened store, and what
 * recovery reports. Types only.
 */
import type { BlockCache } from "./block_cache.ts";
import type { ManifestState, TableMeta } from "./manifest.ts";
import type { Memtable } from "./memtable.ts";
import type { SSTableReader } from "./sstable_reader.ts";

export interface MemtableSlot {
  readonly memtable: Memtable;
  /** Oldest log holding any of this memtable's records. */
  readonly logNumberMin: number;
  /** Open range iterations reading this memtable (its arena must not be reused under them). */
  references: number;
}

export interface TableSlot {
  readonly meta: TableMeta;
  readonly reader: SSTableReader;
  /** Open range iterations reading this table. */
  references: number;
  obsolete: boolean;
}

/** What recovery found at open: records replayed from the logs and torn tails it stopped at. */
export interface RecoveryReport {
  readonly recordsReplayed: number;
  readonly tornTails: readonly { path: string; offset: number; reason: string }[];
}

export interface Recovered {
  readonly manifest: ManifestState;
  readonly cache: BlockCache;
  readonly tables: TableSlot[];
  readonly frozen: MemtableSlot[];
  readonly nextFileNumber: number;
  readonly nextSequence: number;
  readonly recovery: RecoveryReport;
}
