/**
 * The two background jobs of a store, as plain functions over the FileSystem interface, so the
 * same code runs in a piscina pool thread (real file system) and inline in the simulator.
 *
 * - flush: a frozen memtable (a SharedArrayBuffer, reached without a copy) → one SSTable.
 * - compaction: a contiguous run of SSTables (newest first) → one SSTable, records of a key
 *   resolved by the merge rule (record_resolution.ts).
 *
 * Both write the output file, sync it and close it; the caller makes it visible (directory sync,
 * manifest). Neither deletes anything.
 */
import type { FileSystem } from "../io/file_system.ts";
import type { TableMeta } from "./manifest.ts";
import { Memtable } from "./memtable.ts";
import { loadMergeRule, type MergeRuleReference } from "./merge_rule.ts";
import { groupByKey, mergeRecords } from "./merge_iterator.ts";
import { RecordKind, type StoredRecord } from "./record.ts";
import { resolveRecords } from "./record_resolution.ts";
import { SSTableReader } from "./sstable_reader.ts";
import { SSTableWriter } from "./sstable_writer.ts";
import { encodeVersionSet } from "./version_set_format.ts";

export interface FlushRequest {
  readonly memtable: SharedArrayBuffer;
  readonly path: string;
  readonly bloomBitsPerKey: number;
}

export interface CompactionRequest {
  /** Input tables, newest first; they must be a contiguous run of the store's tables. */
  readonly inputPaths: readonly string[];
  readonly outputPath: string;
  readonly bloomBitsPerKey: number;
  /** True when the run includes the store's oldest table: nothing older can hold these keys. */
  readonly bottommost: boolean;
  readonly mergeRule: MergeRuleReference;
}

/** What a job wrote: the table's manifest entry but for its number, and its path. */
export interface TableSummary extends Omit<TableMeta, "fileNumber"> {
  readonly path: string;
}

function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/** Writes `records` (ordered) to a new table at `path`, synced. Returns its summary. */
function writeTable(fs: FileSystem, path: string, bloomBitsPerKey: number, records: Iterable<StoredRecord>): TableSummary {
  const handle = fs.open(path, "create");
  try {
    const writer = new SSTableWriter(handle, { bloomBitsPerKey });
    let recordCount = 0;
    let sequenceMin = Number.MAX_SAFE_INTEGER;
    let sequenceMax = 0;
    let smallest: Uint8Array | undefined;
    let largest: Uint8Array | undefined;
    for (const record of records) {
      writer.add(record);
      recordCount++;
      if (record.sequence < sequenceMin) sequenceMin = record.sequence;
      if (record.sequence > sequenceMax) sequenceMax = record.sequence;
      if (!smallest) smallest = record.key.slice();
      largest = record.key;
    }
    writer.finish();
    handle.sync();
    return {
      path,
      fileBytes: handle.size(),
      recordCount,
      sequenceMin: recordCount ? sequenceMin : 0,
      sequenceMax,
      smallestKeyHex: smallest ? toHex(smallest) : "",
      largestKeyHex: largest ? toHex(largest) : "",
    };
  } finally {
    handle.close();
  }
}

export function runFlush(fs: FileSystem, request: FlushRequest): TableSummary {
  const memtable = Memtable.attach(request.memtable);
  return writeTable(fs, request.path, request.bloomBitsPerKey, memtable.records());
}

export async function runCompaction(fs: FileSystem, request: CompactionRequest): Promise<TableSummary> {
  const rule = await loadMergeRule(request.mergeRule);
  const readers = request.inputPaths.map((path) => SSTableReader.open(fs, path));
  try {
    const merged = mergeRecords(readers.map((reader) => reader.records()));
    function* resolved(): Generator<StoredRecord> {
      for (const run of groupByKey(merged)) {
        const resolution = resolveRecords(run, rule, request.bottommost);
        const newest = run[0]!;
        // A complete set with nothing left is an absent key: drop it. An empty merge adds nothing.
        if (resolution.versions.length === 0 && (resolution.kind === RecordKind.merge || request.bottommost)) continue;
        if (resolution.consumed === 1 && run.length === 1) {
          yield newest;
          continue;
        }
        yield { key: newest.key, sequence: newest.sequence, kind: resolution.kind, payload: encodeVersionSet(resolution.versions) };
      }
    }
    return writeTable(fs, request.outputPath, request.bloomBitsPerKey, resolved());
  } finally {
    for (const reader of readers) reader.close();
  }
}
