/**
 * Recovery at open: brings a store's directory to a consistent state. Reads the manifest (a new,
 * empty one when there are no store files; CorruptionError when there are files but no manifest),
 * removes files no manifest references, opens the manifest's tables, and replays the live commit
 * logs into memtables (frozen, for the background flush) with the records no table holds yet. A
 * log's torn tail is reported, not an error; any other damage throws CorruptionError.
 */
import { assert } from "../util/assert.ts";
import { CorruptionError } from "../util/errors.ts";
import { joinPath, type FileSystem } from "../io/file_system.ts";
import { BlockCache } from "./block_cache.ts";
import { decodeBatch } from "./log_batch.ts";
import { readLog } from "./log_reader.ts";
import {
  emptyManifest,
  logFileName,
  parseFileName,
  readManifest,
  tableFileName,
  writeManifest,
} from "./manifest.ts";
import { Memtable } from "./memtable.ts";
import type { StoredRecord } from "./record.ts";
import { SSTableReader } from "./sstable_reader.ts";
import type { StoreConfig } from "./store_config.ts";
import type { MemtableSlot, Recovered, TableSlot } from "./store_slots.ts";

export type { Recovered } from "./store_slots.ts";


/**
 * Brings a directory to a consistent state: the manifest's tables, plus memtables rebuilt from the
 * live logs (frozen, to be flushed in the background). Removes files no manifest references.
 * REQUIRES: the directory exists and its lock is held.
 */
export function recover(fs: FileSystem, directory: string, config: StoreConfig): Recovered {
  const names = fs.list(directory);
  let manifest = readManifest(fs, directory);
  if (!manifest) {
    const strays = names.filter((name) => ["log", "table"].includes(parseFileName(name).kind));
    if (strays.length > 0) {
      throw new CorruptionError(`store files without a MANIFEST (${strays.slice(0, 3).join(", ")})`, joinPath(directory, "MANIFEST"), 0);
    }
    manifest = emptyManifest();
    writeManifest(fs, directory, manifest);
  }
  const liveTables = new Set(manifest.tables.map((table) => table.fileNumber));
  let highestFileNumber = manifest.nextFileNumber - 1;
  const logs: number[] = [];
  for (const name of names) {
    const { kind, fileNumber } = parseFileName(name);
    highestFileNumber = Math.max(highestFileNumber, fileNumber);
    const stray = kind === "temporary" || (kind === "table" && !liveTables.has(fileNumber)) || (kind === "log" && fileNumber < manifest.logNumberMin);
    if (stray) fs.remove(joinPath(directory, name));
    else if (kind === "log") logs.push(fileNumber);
  }
  const cache = new BlockCache({ capacityBytes: config.blockCacheBytes });
  const tables = manifest.tables.map((meta): TableSlot => ({
    meta,
    reader: SSTableReader.open(fs, joinPath(directory, tableFileName(meta.fileNumber)), { cache, fileNumber: meta.fileNumber }),
    references: 0,
    obsolete: false,
  }));
  const replay = replayLogs(fs, directory, logs.sort((a, b) => a - b), manifest.lastSequence, config.memtableBytes);
  return {
    manifest,
    cache,
    tables,
    frozen: replay.frozen,
    nextFileNumber: highestFileNumber + 1,
    nextSequence: Math.max(manifest.lastSequence, replay.sequenceMax) + 1,
    recovery: { recordsReplayed: replay.records, tornTails: replay.tornTails },
  };
}

function replayLogs(fs: FileSystem, directory: string, logNumbers: readonly number[], lastSequence: number, arenaBytes: number) {
  const frozen: MemtableSlot[] = [];
  const tornTails: { path: string; offset: number; reason: string }[] = [];
  let current: MemtableSlot | undefined;
  let sequenceMax = 0;
  let records = 0;
  for (const logNumber of logNumbers) {
    const path = joinPath(directory, logFileName(logNumber));
    const result = readLog(fs, path);
    if (result.tornTail) tornTails.push({ path, ...result.tornTail });
    result.records.forEach((bytes, index) => {
      let batch: StoredRecord[];
      try {
        batch = decodeBatch(bytes);
      } catch (error) {
        throw new CorruptionError(`undecodable batch (${(error as Error).message})`, path, result.recordOffsets[index] ?? 0);
      }
      for (const record of batch) {
        if (record.sequence <= lastSequence) continue; // already in a table
        if (!current || !current.memtable.insert(record.key, record.sequence, record.kind, record.payload)) {
          if (current) frozen.unshift(current);
          current = { memtable: Memtable.create({ arenaBytes }), logNumberMin: logNumber, references: 0 };
          assert(current.memtable.insert(record.key, record.sequence, record.kind, record.payload), "record fits an empty memtable");
        }
        sequenceMax = Math.max(sequenceMax, record.sequence);
        records++;
      }
    });
  }
  if (current) frozen.unshift(current);
  for (const slot of frozen) slot.memtable.freeze();
  return { frozen, tornTails, sequenceMax, records };
}
