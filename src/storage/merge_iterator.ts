/**
 * K-way merge of record streams, each ordered by (key asc, sequence desc), into one stream in the
 * same order. A binary heap keyed on each source's current record.
 */
import { compareBytes } from "../util/bytes.ts";
import type { StoredRecord } from "./record.ts";

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
  const heap: Cursor[] = [];
  for (const source of sources) {
    const iterator = source[Symbol.iterator]();
    const first = iterator.next();
    if (!first.done) heapPush(heap, { iterator, current: first.value });
  }
  while (heap.length > 0) {
    const top = heap[0]!;
    yield top.current;
    const next = top.iterator.next();
    if (next.done) {
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        siftDown(heap, 0);
      }
    } else {
      top.current = next.value;
      siftDown(heap, 0);
    }
  }
}

function heapPush(heap: Cursor[], cursor: Cursor): void {
  heap.push(cursor);
  let index = heap.length - 1;
  while (index > 0) {
    const parent = (index - 1) >> 1;
    if (compareRecords(heap[parent]!.current, heap[index]!.current) <= 0) break;
    [heap[parent], heap[index]] = [heap[index]!, heap[parent]!];
    index = parent;
  }
}

function siftDown(heap: Cursor[], index: number): void {
  for (;;) {
    const left = index * 2 + 1;
    const right = left + 1;
    let smallest = index;
    if (left < heap.length && compareRecords(heap[left]!.current, heap[smallest]!.current) < 0) smallest = left;
    if (right < heap.length && compareRecords(heap[right]!.current, heap[smallest]!.current) < 0) smallest = right;
    if (smallest === index) return;
    [heap[smallest], heap[index]] = [heap[index]!, heap[smallest]!];
    index = smallest;
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
