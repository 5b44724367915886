/**
 * Memtable micro-benchmark, run by hand: insert, newest() and ordered iteration cost for 16-byte
 * random keys and 100-byte payloads at 500k entries.
 *   Node: npx tsc -p . && node --expose-gc dist/bench/memtable.bench.js
 *   Deno: npx deno run -A bench/memtable.bench.ts
 */
import { stdout } from "node:process";
import { Memtable } from "../src/storage/memtable.ts";
import { RecordKind } from "../src/storage/record.ts";
import { createPrng } from "../src/io/prng.ts";

const ENTRIES = 500_000;
const KEY_BYTES = 16;
const PAYLOAD_BYTES = 100;
const ARENA_BYTES = 128 * 1024 * 1024;

/** Reproducible numbers from the project's seeded PRNG (uint32 per call). */
function prng(seed: number): () => number {
  const random = createPrng(seed >>> 0);
  return () => random.nextU32();
}

function randomKeys(count: number, seed: number): Uint8Array[] {
  const random = prng(seed);
  return Array.from({ length: count }, () => Uint8Array.from({ length: KEY_BYTES }, () => random() & 0xff));
}

function time(label: string, count: number, body: () => void): void {
  const started = performance.now();
  body();
  const elapsedMs = performance.now() - started;
  stdout.write(`${label.padEnd(34)} ${((elapsedMs * 1000) / count).toFixed(3)} µs/op  (${count} ops, ${elapsedMs.toFixed(0)} ms)\n`);
}

function fill(memtable: Memtable, keys: readonly Uint8Array[], payload: Uint8Array): void {
  for (let i = 0; i < keys.length; i++) {
    if (!memtable.insert(keys[i]!, i + 1, RecordKind.put, payload)) throw new Error("bench: arena full");
  }
}

const payload = new Uint8Array(PAYLOAD_BYTES).fill(0xab);
fill(Memtable.create({ arenaBytes: ARENA_BYTES }), randomKeys(50_000, 99), payload); // warm up the JIT

const keys = randomKeys(ENTRIES, 1);
const memtable = Memtable.create({ arenaBytes: ARENA_BYTES });
time(`insert (${ENTRIES} entries)`, ENTRIES, () => fill(memtable, keys, payload));
stdout.write(`arena used: ${(memtable.usedBytes / 2 ** 20).toFixed(1)} MiB, ${(memtable.usedBytes / ENTRIES).toFixed(1)} bytes/entry\n`);

const lookups = randomKeys(ENTRIES, 1).reverse(); // same keys, other objects, other order
let found = 0;
time("newest() hit", ENTRIES, () => {
  for (const key of lookups) if (memtable.newest(key) !== undefined) found++;
});
if (found !== ENTRIES) throw new Error(`bench: found ${found} of ${ENTRIES}`);

const absent = randomKeys(ENTRIES, 2);
time("newest() miss", ENTRIES, () => {
  for (const key of absent) if (memtable.newest(key) !== undefined) found++;
});

let iterated = 0;
time("records() full scan", ENTRIES, () => {
  for (const record of memtable.records()) iterated += record.payload.length > 0 ? 1 : 0;
});
if (iterated !== ENTRIES) throw new Error(`bench: iterated ${iterated} of ${ENTRIES}`);
