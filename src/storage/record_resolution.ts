/**
 * How the records of one key become its versions. Records arrive newest first (memtables, then
 * tables, all with disjoint descending sequence ranges). A put record supersedes everything older;
 * merge records add versions, resolved by the store's merge rule. Used by reads and by compaction,
 * so both answer the same.
 */
import type { MergeRule } from "./merge_rule.ts";
import { RecordKind, type StoredRecord } from "./record.ts";
import { decodeVersionSet, type Version } from "./version_set_format.ts";

export interface Resolution {
  /** "put" when the versions are the key's complete set; "merge" when older records may add to them. */
  readonly kind: RecordKind;
  readonly versions: Version[];
  /** Number of records consumed (the rest are superseded). */
  readonly consumed: number;
}

/**
 * Resolves `records` (newest first, one key). `complete` says no older record of the key exists
 * anywhere else, so a run of merge records is itself the complete set.
 * REQUIRES: records non-empty, all of one key. Throws RangeError on a malformed payload.
 */
export function resolveRecords(records: readonly StoredRecord[], rule: MergeRule, complete: boolean): Resolution {
  const first = records[0]!;
  if (first.kind === RecordKind.put) {
    return { kind: RecordKind.put, versions: decodeVersionSet(first.payload), consumed: 1 };
  }
  const collected: Version[] = [];
  let consumed = 0;
  let reachedPut = false;
  for (const record of records) {
    consumed++;
    for (const version of decodeVersionSet(record.payload)) collected.push(version);
    if (record.kind === RecordKind.put) {
      reachedPut = true;
      break;
    }
  }
  const kind = reachedPut || complete ? RecordKind.put : RecordKind.merge;
  return { kind, versions: rule.merge(collected), consumed };
}
