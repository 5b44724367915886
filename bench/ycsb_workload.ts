/**
 * The YCSB-style workloads of the cluster benchmark, as pre-built operation streams so that
 * choosing keys is not measured. Core workloads A (50% read, 50% update), B (95/5) and C (100%
 * read) draw keys with YCSB's scrambled zipfian chooser (constant 0.99); the pure put and pure get
 * streams draw keys uniformly (they measure the per-request cost, without hot-key effects). Keys
 * are the storage bench's 16-byte "key" + 13-digit numbers (record i is key number i), values come
 * from a pool of 1024 pseudo-random 100-byte values. Everything derives from one seed.
 */
import { createPrng, type Prng } from "../src/io/prng.ts";
import { ScrambledZipfian } from "./zipfian.ts";
import { KEY_BYTES, VALUE_BYTES, writeKey } from "./storage.bench.ts";

export { KEY_BYTES, VALUE_BYTES };

const VALUE_POOL_SIZE = 1024;
/** Operations per pre-built stream (a power of two); tasks cycle through it. */
export const STREAM_OPERATIONS = 1 << 16;

export type WorkloadId = "a" | "b" | "c" | "put" | "get";

export interface WorkloadSpec {
  readonly id: WorkloadId;
  readonly label: string;
  /** Share of reads; the rest are updates (puts of an existing key). */
  readonly readProportion: number;
  readonly keys: "zipfian" | "uniform";
}

export const WORKLOADS: readonly WorkloadSpec[] = [
  { id: "a", label: "A: 50% read, 50% update", readProportion: 0.5, keys: "zipfian" },
  { id: "b", label: "B: 95% read, 5% update", readProportion: 0.95, keys: "zipfian" },
  { id: "c", label: "C: 100% read", readProportion: 1, keys: "zipfian" },
  { id: "put", label: "put 100% (uniform keys)", readProportion: 0, keys: "uniform" },
  { id: "get", label: "get 100% (uniform keys)", readProportion: 1, keys: "uniform" },
];

/**
 * STREAM_OPERATIONS operations. Operation i reads or updates record `records[i]`, whose key is
 * `keys[i]`; an update writes `values[i]`. Owned by the suite; peers read it and must not mutate
 * it or keep it past a round. Each key and value owns its whole ArrayBuffer: a view into a larger
 * buffer would make every postMessage to a node worker copy that whole buffer (structured clone
 * copies a typed array's entire backing store), which once cost the cluster 5× in latency here.
 */
export interface OperationStream {
  readonly workload: WorkloadSpec;
  readonly records: Uint32Array;
  readonly keys: readonly Uint8Array[];
  /** 1 for a read, 0 for an update. */
  readonly reads: Uint8Array;
  readonly values: readonly Uint8Array[];
}

export interface YcsbData {
  readonly recordCount: number;
  readonly values: readonly Uint8Array[];
  readonly streams: ReadonlyMap<WorkloadId, OperationStream>;
}

/** The key of record `record` (a new 16-byte array). */
export function recordKey(record: number): Uint8Array {
  const key = new Uint8Array(KEY_BYTES);
  writeKey(record, key, 0);
  return key;
}

/** The value loaded under record `record`. */
export function loadValue(data: YcsbData, record: number): Uint8Array {
  return data.values[record % VALUE_POOL_SIZE]!;
}

function buildStream(workload: WorkloadSpec, recordCount: number, values: readonly Uint8Array[], random: Prng): OperationStream {
  const zipfian = new ScrambledZipfian(recordCount, random.fork());
  const records = new Uint32Array(STREAM_OPERATIONS);
  const reads = new Uint8Array(STREAM_OPERATIONS);
  const keys: Uint8Array[] = new Array(STREAM_OPERATIONS);
  const chosenValues: Uint8Array[] = new Array(STREAM_OPERATIONS);
  for (let i = 0; i < STREAM_OPERATIONS; i++) {
    const record = workload.keys === "zipfian" ? zipfian.next() : random.nextInt(recordCount);
    records[i] = record;
    reads[i] = random.nextFloat() < workload.readProportion ? 1 : 0;
    keys[i] = recordKey(record);
    chosenValues[i] = values[random.nextInt(VALUE_POOL_SIZE)]!;
  }
  return { workload, records, keys, reads, values: chosenValues };
}

export function createYcsbData(recordCount: number, seed: number): YcsbData {
  const random = createPrng(seed >>> 0);
  const values = Array.from({ length: VALUE_POOL_SIZE }, () => Uint8Array.from({ length: VALUE_BYTES }, () => random.nextU32() & 0xff));
  const streams = new Map<WorkloadId, OperationStream>();
  for (const workload of WORKLOADS) streams.set(workload.id, buildStream(workload, recordCount, values, random.fork()));
  return { recordCount, values, streams };
}

/** Share of a stream's operations that fall on its most popular record (for the report). */
export function hottestRecordShare(stream: OperationStream): number {
  const counts = new Map<number, number>();
  let best = 0;
  for (const record of stream.records) {
    const count = (counts.get(record) ?? 0) + 1;
    counts.set(record, count);
    if (count > best) best = count;
  }
  return best / stream.records.length;
}
