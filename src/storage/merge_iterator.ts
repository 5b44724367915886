/**
 * K-way merge of record streams, each ordered by (key asc, sequence desc), into one stream in the
 * same order. A binary heap keyed on each source's current record.
 */
import { compareBytes } from "../util/bytes.ts";
import type { StoredRecord } from "./record.ts";
import { MinHeap } from "../util/min_heap.ts";

export function compareRecords(a: StoredRecord, b: StoredRecord): number {
  const byKey = compareBytes(a.key, b.key);
  if (byKey !== 0) return byKey;
  return b.sequence - a.sequence;
}

interface Cursor {
  readonly iterator: Iterator<StoredRecord>;
  current: StoredRecord;
}

export function* mergeRecords(sources: readonly Iterable<StoredRecord>[]): Generator<StoredRecord> {
  const heap = new MinHeap<Cursor>((a, b) => compareRecords(a.current, b.current) < 0);
  for (const source of sources) {
    const iterator = source[Symbol.iterator]();
    const first = iterator.next();
    if (!first.done) heap.push({ iterator, current: first.value });
  }
  for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
    yield top.current;
    const next = top.iterator.next();
    if (next.done) {
      heap.pop();
    } else {
      top.current = next.value;
      heap.fixFirst();
    }
  }
}

/** Groups a merged stream into runs of records with the same key (newest first within a run). */
export function* groupByKey(records: Iterable<StoredRecord>): Generator<StoredRecord[]> {
  let run: StoredRecord[] = [];
  for (const record of records) {
    if (run.length > 0 && compareBytes(run[0]!.key, record.key) !== 0) {
      yield run;
      run = [];
    }
    run.push(record);
  }
  if (run.length > 0) yield run;
}
