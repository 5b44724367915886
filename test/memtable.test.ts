import { once } from "node:events";
import { Worker } from "node:worker_threads";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Memtable } from "../src/storage/memtable.ts";
import { keyHashes } from "../src/storage/bloom.ts";
import { RecordKind, SEQUENCE_MAX, type StoredRecord } from "../src/storage/record.ts";
import { AssertionError } from "../src/util/assert.ts";
import { compareBytes } from "../src/util/bytes.ts";
import { LoomRangeError, LoomTypeError } from "../src/util/errors.ts";
import { limits } from "../src/util/limits.ts";
import type { ReaderReport } from "./fixtures/memtable_reader_worker.ts";
import { createPrng } from "../src/io/prng.ts";
import { rejectsWithCode } from "./support/assertions.ts";

const ARENA_BYTES = limits.memtableBytesMin;



/** Seeded test randomness from the project's PRNG: the same seed gives the same data on every run. */
function prng(seed: number): () => number {
  const random = createPrng(seed);
  return () => random.nextU32();
}

interface PlainRecord {
  key: number[];
  sequence: number;
  kind: number;
  payload: number[];
}

function plain(record: StoredRecord): PlainRecord {
  return { key: [...record.key], sequence: record.sequence, kind: record.kind, payload: [...record.payload] };
}

function compareModel(a: PlainRecord, b: PlainRecord): number {
  return compareBytes(Uint8Array.from(a.key), Uint8Array.from(b.key)) || b.sequence - a.sequence;
}

/** Keys from bytes 0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff of length 1 to 4, so many are prefixes of others. */
function randomKey(random: () => number): number[] {
  const alphabet = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
  const length = 1 + (random() % 4);
  return Array.from({ length }, () => alphabet[random() % alphabet.length]!);
}

/** Sequences small, near 2^32 and near 2^53, to exercise both words of the stored sequence. */
function randomSequence(random: () => number): number {
  switch (random() % 3) {
    case 0:
      return random() % 1000;
    case 1:
      return 2 ** 32 - 500 + (random() % 1000);
    default:
      return SEQUENCE_MAX - (random() % 1000);
  }
}

/** A memtable filled with random records, and the same records as a sorted model. */
function populate(seed: number): { memtable: Memtable; model: PlainRecord[]; keys: number[][] } {
  const random = prng(seed);
  const keys = Array.from({ length: 40 }, () => randomKey(random));
  const memtable = Memtable.create({ arenaBytes: ARENA_BYTES, seed });
  const model: PlainRecord[] = [];
  const seen = new Set<string>();
  while (model.length < 500) {
    const key = keys[random() % keys.length]!;
    const sequence = randomSequence(random);
    if (seen.has(`${key}/${sequence}`)) continue;
    seen.add(`${key}/${sequence}`);
    const kind = random() % 2 === 0 ? RecordKind.put : RecordKind.merge;
    const payload = Array.from({ length: random() % 24 }, () => random() & 0xff);
    assert.ok(memtable.insert(Uint8Array.from(key), sequence, kind, Uint8Array.from(payload)));
    model.push({ key, sequence, kind, payload });
  }
  model.sort(compareModel);
  return { memtable, model, keys };
}

/** Keys to look up: every inserted key, its prefixes and extensions, and random absent keys. */
function probeKeys(keys: number[][], random: () => number): number[][] {
  const probes = [...keys];
  for (const key of keys) probes.push(key.slice(0, -1), [...key, 0x00], [...key, 0xff]);
  for (let i = 0; i < 40; i++) probes.push(randomKey(random));
  return probes.filter((key) => key.length > 0);
}

const SEEDS = [1, 2, 3, 0xdeadbeef];

test("records iterate in key-ascending, sequence-descending order for keys that share prefixes and hold 0x00/0xff bytes", () => {
  for (const seed of SEEDS) {
    const { memtable, model } = populate(seed);
    assert.equal([...memtable.records()].map(plain), model, `seed ${seed}`);
    assert.is(memtable.entryCount, model.length);
  }
});

test("recordsFor returns every record of a key newest first, and newest returns the first of them", () => {
  for (const seed of SEEDS) {
    const { memtable, model, keys } = populate(seed);
    for (const key of probeKeys(keys, prng(seed + 100))) {
      const expected = model.filter((record) => compareBytes(Uint8Array.from(record.key), Uint8Array.from(key)) === 0);
      const bytes = Uint8Array.from(key);
      assert.equal(memtable.recordsFor(bytes).map(plain), expected, `key ${key}`);
      const newest = memtable.newest(bytes);
      assert.equal(newest === undefined ? undefined : plain(newest), expected[0], `key ${key}`);
    }
  }
});

test("records(start) begins at the first record whose key is at or after start, present or not", () => {
  for (const seed of SEEDS) {
    const { memtable, model, keys } = populate(seed);
    for (const start of probeKeys(keys, prng(seed + 200))) {
      const from = model.findIndex((record) => compareBytes(Uint8Array.from(record.key), Uint8Array.from(start)) >= 0);
      const expected = from === -1 ? [] : model.slice(from);
      assert.equal([...memtable.records(Uint8Array.from(start))].map(plain), expected, `start ${start}`);
    }
    assert.equal([...memtable.records(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff))], []);
  }
});

test("insert returns false exactly when the arena has no room and then changes nothing, PRNG included", () => {
  const random = prng(7);
  const memtable = Memtable.create({ arenaBytes: ARENA_BYTES, seed: 99 });
  const twin = Memtable.create({ arenaBytes: ARENA_BYTES, seed: 99 }); // gets only the inserts that fit
  const model: PlainRecord[] = [];
  let refused = 0;
  let refusedInARow = 0;
  // Stop when the arena is full, or when inserts keep being refused: a refused insert restores the
  // height PRNG, so once the next height needs a tower that no longer fits, nothing else will.
  for (let sequence = 1; ARENA_BYTES - memtable.usedBytes >= Memtable.recordBytesMin(1, 0) && refusedInARow < 200; sequence++) {
    const key = Uint8Array.from({ length: 1 + (random() % 32) }, () => random() & 0xff);
    const free = ARENA_BYTES - memtable.usedBytes;
    const oneWordTooMany = new Uint8Array(free + 4 - Memtable.recordBytesMin(1, 0));
    assert.not.ok(memtable.insert(Uint8Array.of(0), sequence, RecordKind.put, oneWordTooMany), "4 bytes past the end do not fit");
    const payload = new Uint8Array(random() % Math.min(2000, free)).fill(sequence & 0xff); // hugs the end as it fills
    const before = { used: memtable.usedBytes, count: memtable.entryCount, min: memtable.sequenceMin, max: memtable.sequenceMax };
    const arenaBefore = new Uint8Array(memtable.buffer).slice();
    const inserted = memtable.insert(key, sequence, RecordKind.put, payload);
    if (free >= Memtable.recordBytesMax(key.length, payload.length)) assert.ok(inserted, "a record that surely fits is accepted");
    if (free < Memtable.recordBytesMin(key.length, payload.length)) assert.not.ok(inserted, "a record that cannot fit is refused");
    assert.ok(memtable.usedBytes <= memtable.arenaBytes);
    if (inserted) {
      assert.ok(twin.insert(key, sequence, RecordKind.put, payload));
      const taken = memtable.usedBytes - before.used;
      assert.ok(taken >= Memtable.recordBytesMin(key.length, payload.length));
      assert.ok(taken <= Memtable.recordBytesMax(key.length, payload.length));
      model.push({ key: [...key], sequence, kind: RecordKind.put, payload: [...payload] });
      refusedInARow = 0;
    } else {
      refused++;
      refusedInARow++;
      assert.equal(
        { used: memtable.usedBytes, count: memtable.entryCount, min: memtable.sequenceMin, max: memtable.sequenceMax },
        before,
      );
      assert.ok(compareBytes(new Uint8Array(memtable.buffer), arenaBefore) === 0, "a refused insert writes no byte");
    }
  }
  assert.ok(refused > 0, "the arena filled up");
  assert.ok(memtable.entryCount > 20);
  assert.ok(compareBytes(new Uint8Array(memtable.buffer), new Uint8Array(twin.buffer)) === 0, "refused inserts left no trace");
  model.sort(compareModel);
  assert.equal([...memtable.records()].map(plain), model);
  for (const [index, record] of model.entries()) {
    const newest = model.findIndex((other) => compareBytes(Uint8Array.from(other.key), Uint8Array.from(record.key)) === 0);
    if (newest === index) assert.equal(plain(memtable.newest(Uint8Array.from(record.key))!), record, "lookups survive a full arena");
  }
});

test("sequenceMin and sequenceMax track the smallest and largest sequence, up to 2^53 - 1", () => {
  const memtable = Memtable.create({ arenaBytes: ARENA_BYTES });
  assert.is(memtable.sequenceMin, 0);
  assert.is(memtable.sequenceMax, 0);
  const key = Uint8Array.of(5);
  const sequences = [2 ** 32 - 1, 2 ** 32, SEQUENCE_MAX, 7, 2 ** 52 + 3];
  for (const sequence of sequences) assert.ok(memtable.insert(key, sequence, RecordKind.merge, new Uint8Array(0)));
  assert.is(memtable.sequenceMin, 7);
  assert.is(memtable.sequenceMax, SEQUENCE_MAX);
  const descending = [...sequences].sort((a, b) => b - a);
  assert.equal(memtable.recordsFor(key).map((record) => record.sequence), descending);
  assert.ok(memtable.insert(Uint8Array.of(1), 0, RecordKind.put, new Uint8Array(0)));
  assert.is(memtable.sequenceMin, 0);
});

test("a worker thread attached to the frozen buffer sees exactly the writer's records through zero-copy views", async () => {
  const { memtable, model } = populate(11);
  memtable.freeze();
  const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  const worker = new Worker(new URL(`./fixtures/memtable_reader_worker${extension}`, import.meta.url));
  try {
    const reply = once(worker, "message");
    worker.postMessage(memtable.buffer);
    const [report] = (await reply) as [ReaderReport];
    assert.equal(report.records, [...memtable.records()].map(plain));
    assert.equal(report.records, model);
    assert.is(report.entryCount, memtable.entryCount);
    assert.is(report.usedBytes, memtable.usedBytes);
    assert.is(report.arenaBytes, memtable.arenaBytes);
    assert.is(report.sequenceMin, memtable.sequenceMin);
    assert.is(report.sequenceMax, memtable.sequenceMax);
    assert.ok(report.frozen);
    assert.ok(report.viewsIntoBuffer);
    assert.match(report.insertError, /frozen/);
  } finally {
    await worker.terminate();
  }
});

test("attach refuses a buffer that is not a frozen memtable arena", async () => {
  const memtable = Memtable.create({ arenaBytes: ARENA_BYTES });
  await rejectsWithCode(() => Memtable.attach(memtable.buffer), "LOOM_INVALID_ARGUMENT", /not frozen/);
  await rejectsWithCode(() => Memtable.attach(new SharedArrayBuffer(ARENA_BYTES)), "LOOM_INVALID_ARGUMENT");
  await rejectsWithCode(() => Memtable.attach(new ArrayBuffer(ARENA_BYTES) as unknown as SharedArrayBuffer), "LOOM_INVALID_ARGUMENT");
  memtable.freeze();
  assert.is(Memtable.attach(memtable.buffer).entryCount, 0);
});

test("the writer's key filter never rules out an inserted key and rules out most others; an attached reader has none", async () => {
  const memtable = Memtable.create({ arenaBytes: 1 << 20 });
  const encoder = new TextEncoder();
  const hashes = { first: 0, second: 0 };
  let inserted = 0;
  while (memtable.insert(encoder.encode(`key-${inserted}`), inserted + 1, RecordKind.put, new Uint8Array(100))) inserted++;
  assert.ok(inserted > 5_000, `the arena took ${inserted} records`);
  for (let index = 0; index < inserted; index++) assert.ok(memtable.mayContain(keyHashes(encoder.encode(`key-${index}`), hashes)), `key-${index} was ruled out`);
  let positives = 0;
  for (let index = 0; index < 20_000; index++) if (memtable.mayContain(keyHashes(encoder.encode(`absent-${index}`), hashes))) positives++;
  assert.ok(positives < 20_000 * 0.03, `${positives} of 20,000 absent keys passed the filter`);
  memtable.freeze();
  assert.ok(Memtable.attach(memtable.buffer).mayContain(keyHashes(encoder.encode("absent-0"), hashes)), "no filter: every key may be there");
  const reused = Memtable.create({ arenaBytes: 1 << 20, reuse: memtable.buffer });
  assert.is(reused.mayContain(keyHashes(encoder.encode("key-0"), hashes)), false, "a reused arena starts with an empty filter");
});

test("a frozen memtable refuses inserts but still serves reads", async () => {
  const memtable = Memtable.create({ arenaBytes: ARENA_BYTES });
  assert.ok(memtable.insert(Uint8Array.of(1), 1, RecordKind.put, Uint8Array.of(9)));
  assert.not.ok(memtable.frozen);
  memtable.freeze();
  assert.ok(memtable.frozen);
  await rejectsWithCode(() => memtable.insert(Uint8Array.of(2), 2, RecordKind.put, new Uint8Array(0)), "LOOM_ASSERTION");
  assert.is(memtable.entryCount, 1);
  assert.equal([...memtable.newest(Uint8Array.of(1))!.payload], [9]);
});

test("inserting a (key, sequence) pair twice is an assertion failure", async () => {
  const memtable = Memtable.create({ arenaBytes: ARENA_BYTES });
  assert.ok(memtable.insert(Uint8Array.of(1, 2), 5, RecordKind.put, new Uint8Array(0)));
  assert.ok(memtable.insert(Uint8Array.of(1), 5, RecordKind.put, new Uint8Array(0)));
  await rejectsWithCode(() => memtable.insert(Uint8Array.of(1, 2), 5, RecordKind.merge, new Uint8Array(0)), "LOOM_ASSERTION");
});

test("insert refuses empty or oversized keys, bad sequences, unknown kinds and oversized payloads", async () => {
  const memtable = Memtable.create({ arenaBytes: ARENA_BYTES });
  const key = Uint8Array.of(1);
  const empty = new Uint8Array(0);
  await rejectsWithCode(() => memtable.insert(empty, 1, RecordKind.put, empty), "LOOM_OUT_OF_RANGE", /key is 0 bytes/);
  await rejectsWithCode(() => memtable.insert(new Uint8Array(limits.storeKeyBytesMax + 1), 1, RecordKind.put, empty), "LOOM_OUT_OF_RANGE");
  await rejectsWithCode(() => memtable.insert("k" as unknown as Uint8Array, 1, RecordKind.put, empty), "LOOM_INVALID_ARGUMENT");
  for (const sequence of [-1, 1.5, SEQUENCE_MAX + 1, Number.NaN]) {
    await rejectsWithCode(() => memtable.insert(key, sequence, RecordKind.put, empty), "LOOM_OUT_OF_RANGE");
  }
  await rejectsWithCode(() => memtable.insert(key, 1, 0 as RecordKind, empty), "LOOM_INVALID_ARGUMENT");
  await rejectsWithCode(() => memtable.insert(key, 1, RecordKind.put, new Uint8Array(limits.recordPayloadBytesMax + 1)), "LOOM_OUT_OF_RANGE");
  assert.is(memtable.entryCount, 0);
  assert.is(memtable.sequenceMax, 0);
});

test("create refuses arena sizes outside the limits or not a multiple of 8, and bad seeds", async () => {
  for (const arenaBytes of [limits.memtableBytesMin - 8, limits.memtableBytesMax + 8, limits.memtableBytesMin + 4, 1.5]) {
    await rejectsWithCode(() => Memtable.create({ arenaBytes }), "LOOM_OUT_OF_RANGE");
  }
  await rejectsWithCode(() => Memtable.create({ arenaBytes: ARENA_BYTES, seed: -1 }), "LOOM_OUT_OF_RANGE");
});

test("the same seed and inserts give a byte-identical arena; another seed changes the layout, not the order", () => {
  const a = populate(5).memtable;
  const b = populate(5).memtable;
  assert.ok(compareBytes(new Uint8Array(a.buffer), new Uint8Array(b.buffer)) === 0);
  const random = prng(5);
  const reseeded = Memtable.create({ arenaBytes: ARENA_BYTES, seed: 6 });
  for (const record of [...a.records()].sort(() => (random() & 1) - 0.5)) {
    assert.ok(reseeded.insert(record.key, record.sequence, record.kind, record.payload));
  }
  assert.ok(compareBytes(new Uint8Array(a.buffer), new Uint8Array(reseeded.buffer)) !== 0);
  assert.equal([...reseeded.records()].map(plain), [...a.records()].map(plain));
});

test("an empty memtable has no records and reports only its fixed overhead as used", () => {
  const memtable = Memtable.create({ arenaBytes: ARENA_BYTES });
  assert.equal([...memtable.records()], []);
  assert.equal(memtable.recordsFor(Uint8Array.of(0)), []);
  assert.is(memtable.newest(Uint8Array.of(0)), undefined);
  assert.is(memtable.entryCount, 0);
  assert.is(memtable.arenaBytes, ARENA_BYTES);
  assert.ok(memtable.usedBytes > 0 && memtable.usedBytes < 256);
});

test("a reused arena starts empty and ends byte-identical to a fresh one given the same inserts", async () => {
  const used = populate(3).memtable;
  used.freeze();
  const reused = Memtable.create({ arenaBytes: ARENA_BYTES, seed: 5, reuse: used.buffer });
  const fresh = Memtable.create({ arenaBytes: ARENA_BYTES, seed: 5 });
  assert.is(reused.entryCount, 0);
  assert.is(reused.frozen, false);
  assert.equal([...reused.records()], []);
  for (const memtable of [reused, fresh]) {
    for (let i = 0; i < 50; i++) assert.ok(memtable.insert(Uint8Array.of(i, 1), i + 1, RecordKind.put, Uint8Array.of(i)));
  }
  assert.ok(compareBytes(new Uint8Array(reused.buffer), new Uint8Array(fresh.buffer)) === 0);
  await rejectsWithCode(() => Memtable.create({ arenaBytes: ARENA_BYTES * 2, reuse: used.buffer }), "LOOM_OUT_OF_RANGE");
});

test.run();
