import { test } from "uvu";
import * as assert from "uvu/assert";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { joinPath } from "../src/io/file_system.ts";
import { RealFileSystem } from "../src/io/real_file_system.ts";
import { BlockCache } from "../src/storage/block_cache.ts";
import { RecordKind, type StoredRecord } from "../src/storage/record.ts";
import { FOOTER_BYTES, type TableProperties } from "../src/storage/sstable_format.ts";
import { SSTableReader } from "../src/storage/sstable_reader.ts";
import { SSTableWriter, type SSTableWriterOptions } from "../src/storage/sstable_writer.ts";
import { compareBytes, equalBytes, utf8Encode } from "../src/util/bytes.ts";
import { createPrng } from "../src/io/prng.ts";
import { rejectsWithCode, type CodedError } from "./support/assertions.ts";

const fs = new RealFileSystem();
const directory = nodeFs.mkdtempSync(joinPath(os.tmpdir(), "loomkv-sstable-"));
let fileCounter = 0;

test.after(() => fs.removeTree(directory));

/** Seeded test randomness from the project's PRNG: the same seed gives the same data on every run. */
function prng(seed: number): () => number {
  const random = createPrng(seed);
  return () => random.nextFloat();
}

function compareRecords(a: StoredRecord, b: StoredRecord): number {
  return compareBytes(a.key, b.key) || b.sequence - a.sequence;
}

function record(key: string | Uint8Array, sequence: number, payload: string | Uint8Array, kind: RecordKind = RecordKind.put): StoredRecord {
  return {
    key: typeof key === "string" ? utf8Encode(key) : key,
    sequence,
    kind,
    payload: typeof payload === "string" ? utf8Encode(payload) : payload,
  };
}

function newPath(): string {
  return joinPath(directory, `${++fileCounter}.sst`);
}

function writeTable(
  records: readonly StoredRecord[],
  options: SSTableWriterOptions = { bloomBitsPerKey: 10 },
  path = newPath(),
): { path: string; properties: TableProperties } {
  const handle = fs.open(path, "create");
  const writer = new SSTableWriter(handle, options);
  for (const each of records) writer.add(each);
  const properties = writer.finish();
  assert.is(writer.fileBytes, handle.size());
  handle.sync();
  handle.close();
  return { path, properties };
}

function plain(records: Iterable<StoredRecord>): { key: number[]; sequence: number; kind: number; payload: number[] }[] {
  return [...records].map((each) => ({ key: [...each.key], sequence: each.sequence, kind: each.kind, payload: [...each.payload] }));
}

function sameRecord(a: StoredRecord, b: StoredRecord): boolean {
  return equalBytes(a.key, b.key) && a.sequence === b.sequence && a.kind === b.kind && equalBytes(a.payload, b.payload);
}

/** Asserts record-by-record equality (fast on large payloads); shows the first difference readably. */
function assertRecords(actual: Iterable<StoredRecord>, expected: readonly StoredRecord[], message = ""): void {
  const got = [...actual];
  for (let i = 0; i < Math.max(got.length, expected.length); i++) {
    const a = got[i];
    const b = expected[i];
    if (a === undefined || b === undefined || !sameRecord(a, b)) {
      assert.equal(plain(a === undefined ? [] : [a]), plain(b === undefined ? [] : [b]), `${message} record ${i} of ${expected.length}`);
    }
  }
}

function randomBytes(random: () => number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

/** Keys over a tiny alphabet with 0x00 and 0xff, so that keys often prefix each other. */
function randomKey(random: () => number): Uint8Array {
  const alphabet = [0x00, 0x01, 0x61, 0x62, 0xfe, 0xff];
  const key = new Uint8Array(1 + Math.floor(random() * 8));
  for (let i = 0; i < key.length; i++) key[i] = alphabet[Math.floor(random() * alphabet.length)]!;
  return key;
}

function randomPayloadLength(random: () => number): number {
  const roll = random();
  if (roll < 0.05) return 0;
  if (roll < 0.9) return Math.floor(random() * 200);
  return Math.floor(random() * 20 * 1024);
}

/** Random table contents in table order: distinct keys, 1..40 records each, distinct sequences. */
function randomRecords(random: () => number, keyCount: number): StoredRecord[] {
  const keys = new Map<string, Uint8Array>();
  while (keys.size < keyCount) {
    const key = randomKey(random);
    keys.set(key.join(","), key);
  }
  const records: StoredRecord[] = [];
  let sequence = 1;
  for (const key of keys.values()) {
    const versions = random() < 0.1 ? 1 + Math.floor(random() * 40) : 1 + Math.floor(random() * 3);
    for (let i = 0; i < versions; i++) {
      sequence += 1 + Math.floor(random() * 1000);
      const kind = random() < 0.5 ? RecordKind.put : RecordKind.merge;
      records.push({ key, sequence, kind, payload: randomBytes(random, randomPayloadLength(random)) });
    }
  }
  return records.sort(compareRecords);
}

function modelRecordsFor(records: readonly StoredRecord[], key: Uint8Array): StoredRecord[] {
  return records.filter((each) => equalBytes(each.key, key));
}

/** Asserts that `call` fails with LOOM_CORRUPTION naming `path` and a byte offset; returns the error. */
async function corruption(call: () => unknown, path: string): Promise<CodedError> {
  const error = await rejectsWithCode(call, "LOOM_CORRUPTION");
  assert.is(error.path, path);
  assert.ok(Number.isInteger(error.offset) && error.offset! >= 0, `offset ${error.offset}`);
  return error;
}

test("random tables read back exactly: full scan, every key's records newest first, absent keys empty", () => {
  for (const seed of [1, 2, 3, 4]) {
    const random = prng(seed);
    const records = randomRecords(random, 150 + seed * 40);
    const blockBytesTarget = seed % 2 === 0 ? 256 : 4096;
    const { path, properties } = writeTable(records, { bloomBitsPerKey: 10, blockBytesTarget });
    const reader = SSTableReader.open(fs, path);
    assert.is(reader.properties.recordCount, records.length);
    assert.equal(reader.properties, properties);
    assertRecords(reader.records(), records);
    const present = new Set<string>();
    for (const each of records) {
      if (present.has(each.key.join(","))) continue;
      present.add(each.key.join(","));
      assertRecords(reader.recordsFor(each.key), modelRecordsFor(records, each.key), `key ${each.key.join(",")}`);
    }
    assert.is(properties.keyCount, present.size);
    let absentChecked = 0;
    while (absentChecked < 300) {
      const key = randomKey(random);
      if (present.has(key.join(","))) continue;
      assert.equal(reader.recordsFor(key), []);
      absentChecked++;
    }
    reader.close();
  }
});

test("a scan from a start key begins at the first key at or after it", () => {
  const random = prng(11);
  const records = randomRecords(random, 300);
  const { path } = writeTable(records, { bloomBitsPerKey: 10, blockBytesTarget: 512 });
  const reader = SSTableReader.open(fs, path);
  const starts = [...Array.from({ length: 200 }, () => randomKey(random)), records[0]!.key, records.at(-1)!.key];
  starts.push(Uint8Array.of(0x00), Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
  for (const start of starts) {
    const expected = records.filter((each) => compareBytes(each.key, start) >= 0);
    assertRecords(reader.records(start), expected, `start ${start.join(",")}`);
  }
  reader.close();
});

test("a key whose records span several data blocks is returned in full, and its neighbours too", () => {
  const many = Array.from({ length: 300 }, (_, i) => record("middle", 1000 - i, `version ${i} `.repeat(10)));
  const records = [record("before", 5, "b"), ...many, record("middle\x00", 7, "after prefix"), record("zebra", 1, "z")];
  const { path, properties } = writeTable(records, { bloomBitsPerKey: 10, blockBytesTarget: 256 });
  assert.ok(properties.dataBlockCount > 20, `only ${properties.dataBlockCount} blocks`);
  const reader = SSTableReader.open(fs, path);
  assertRecords(reader.recordsFor(utf8Encode("middle")), many);
  assertRecords(reader.recordsFor(utf8Encode("before")), [records[0]!]);
  assertRecords(reader.recordsFor(utf8Encode("middle\x00")), [records.at(-2)!]);
  assert.equal(reader.recordsFor(utf8Encode("midd")), []);
  assertRecords(reader.records(utf8Encode("middle")), records.slice(1));
  reader.close();
});

test("an empty table opens, has empty properties and answers nothing", () => {
  const { path, properties } = writeTable([]);
  assert.is(properties.recordCount, 0);
  assert.is(properties.dataBlockCount, 0);
  const reader = SSTableReader.open(fs, path);
  assert.is(reader.properties.smallestKey.length, 0);
  assert.equal(reader.recordsFor(utf8Encode("anything")), []);
  assert.equal([...reader.records()], []);
  assert.equal([...reader.records(utf8Encode("a"))], []);
  reader.close();
});

test("a record larger than the block target is stored in a block of its own", () => {
  const big = new Uint8Array(100_000).map((_, i) => i % 251);
  const records = [record("a", 3, "small"), record("b", 2, big), record("c", 1, "small")];
  const { path, properties } = writeTable(records, { bloomBitsPerKey: 10, blockBytesTarget: 1024 });
  assert.is(properties.dataBlockCount, 2);
  assert.ok(properties.dataBytes > 100_000);
  const reader = SSTableReader.open(fs, path);
  assertRecords(reader.recordsFor(utf8Encode("b")), [records[1]!]);
  assertRecords(reader.records(), records);
  reader.close();
});

test("properties record counts, key range and sequence range", () => {
  const records = [record("k1", 9, "a"), record("k1", 4, "b", RecordKind.merge), record("k2", 12, "c"), record("k3", 2, "")];
  const { path, properties } = writeTable(records, { bloomBitsPerKey: 12, createdAtMs: 1_700_000_000_000 });
  const reader = SSTableReader.open(fs, path);
  for (const each of [properties, reader.properties]) {
    assert.is(each.recordCount, 4);
    assert.is(each.keyCount, 3);
    assert.equal([...each.smallestKey], [...utf8Encode("k1")]);
    assert.equal([...each.largestKey], [...utf8Encode("k3")]);
    assert.is(each.sequenceMin, 2);
    assert.is(each.sequenceMax, 12);
    assert.is(each.bloomBitsPerKey, 12);
    assert.is(each.createdAtMs, 1_700_000_000_000);
    assert.is(each.rawBytes, 8 + 3);
  }
  assert.is(reader.fileBytes, nodeFs.statSync(path).size);
  reader.close();
});

test("reads through a block cache hit it and return the same records as uncached reads", () => {
  const random = prng(21);
  const records = randomRecords(random, 400);
  const { path } = writeTable(records, { bloomBitsPerKey: 10, blockBytesTarget: 512 });
  const cache = new BlockCache({ capacityBytes: 1 << 20 });
  const cached = SSTableReader.open(fs, path, { cache, fileNumber: 7 });
  const uncached = SSTableReader.open(fs, path);
  const keys = [...new Set(records.map((each) => each.key.join(",")))].map((text) => Uint8Array.from(text.split(",").map(Number)));
  for (let round = 0; round < 2; round++) {
    for (const key of keys) assertRecords(cached.recordsFor(key), uncached.recordsFor(key));
  }
  const stats = cache.stats();
  assert.ok(stats.hits >= keys.length, `hits ${stats.hits}`);
  assert.ok(stats.bytes > 0 && stats.bytes <= stats.capacityBytes);
  cached.close();
  uncached.close();
});

test("a block cache stays within its byte budget and evicts least recently used blocks", () => {
  const cache = new BlockCache({ capacityBytes: 1000 });
  cache.insert(1, 0, new Uint8Array(300));
  cache.insert(1, 400, new Uint8Array(300));
  assert.ok(cache.get(1, 0) !== undefined);
  cache.insert(2, 0, new Uint8Array(300));
  assert.is(cache.get(1, 400), undefined, "the least recently used block is evicted");
  assert.ok(cache.get(1, 0) !== undefined);
  assert.ok(cache.stats().bytes <= 1000);
  cache.insert(3, 0, new Uint8Array(5000));
  assert.is(cache.get(3, 0), undefined, "a block larger than the budget is not cached");
  cache.evictFile(1);
  assert.is(cache.get(1, 0), undefined);
  assert.is(cache.stats().entries, 1);
});

test("returned records do not alias cached blocks: mutating one does not change later reads", () => {
  const records = Array.from({ length: 50 }, (_, i) => record(`key-${String(i).padStart(3, "0")}`, 100 - i, `payload-${i}`));
  const { path } = writeTable(records);
  const cache = new BlockCache({ capacityBytes: 1 << 20 });
  const reader = SSTableReader.open(fs, path, { cache, fileNumber: 1 });
  const first = reader.recordsFor(utf8Encode("key-010"))[0]!;
  first.payload.fill(0);
  first.key.fill(0);
  for (const each of reader.records()) each.payload.fill(0);
  assertRecords(reader.recordsFor(utf8Encode("key-010")), [records[10]!]);
  assertRecords(reader.records(), records);
  reader.close();
});

test("a scan that fills the cache makes later point reads hit it", () => {
  const records = Array.from({ length: 500 }, (_, i) => record(`key-${String(i).padStart(4, "0")}`, 1, "v".repeat(50)));
  const { path, properties } = writeTable(records, { bloomBitsPerKey: 10, blockBytesTarget: 1024 });
  const cache = new BlockCache({ capacityBytes: 1 << 20 });
  const reader = SSTableReader.open(fs, path, { cache, fileNumber: 3 });
  assert.is([...reader.records(undefined, { fillCache: true })].length, 500);
  assert.is(cache.stats().entries, properties.dataBlockCount);
  reader.recordsFor(utf8Encode("key-0250"));
  assert.is(cache.stats().misses, 0);
  reader.close();
});

function flipByte(path: string, offset: number): void {
  const bytes = nodeFs.readFileSync(path);
  bytes[offset] = bytes[offset]! ^ 0x40;
  nodeFs.writeFileSync(path, bytes);
}

function footerOf(path: string): { indexOffset: number; filterOffset: number; propertiesOffset: number } {
  const bytes = nodeFs.readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - FOOTER_BYTES, FOOTER_BYTES);
  return {
    indexOffset: Number(view.getBigUint64(0, true)),
    filterOffset: Number(view.getBigUint64(16, true)),
    propertiesOffset: Number(view.getBigUint64(32, true)),
  };
}

const corruptible = Array.from({ length: 200 }, (_, i) => record(`key-${String(i).padStart(4, "0")}`, 1000 - i, `value ${i}`));

test("a flipped byte in a data block fails the read with the file and block offset, never a wrong value", async () => {
  const { path } = writeTable(corruptible, { bloomBitsPerKey: 10, blockBytesTarget: 1024 });
  flipByte(path, 100);
  const reader = SSTableReader.open(fs, path);
  assert.is((await corruption(() => reader.recordsFor(utf8Encode("key-0001")), path)).offset, 0);
  assert.is((await corruption(() => [...reader.records()], path)).offset, 0);
  assertRecords(reader.recordsFor(utf8Encode("key-0199")), [corruptible[199]!], "other blocks still read");
  reader.close();
});

test("a flipped byte in the index, filter or properties block fails open with that block's offset", async () => {
  const probe = writeTable(corruptible, { bloomBitsPerKey: 10, blockBytesTarget: 1024 });
  const offsets = footerOf(probe.path);
  for (const blockOffset of [offsets.indexOffset, offsets.filterOffset, offsets.propertiesOffset]) {
    const { path } = writeTable(corruptible, { bloomBitsPerKey: 10, blockBytesTarget: 1024 });
    flipByte(path, blockOffset + 2);
    assert.is((await corruption(() => SSTableReader.open(fs, path), path)).offset, blockOffset);
  }
});

test("a flipped byte in the footer or a truncated file fails open naming the footer", async () => {
  const { path } = writeTable(corruptible);
  const size = nodeFs.statSync(path).size;
  for (const inFooter of [0, 20, 48, 53, 60]) {
    const copy = newPath();
    nodeFs.copyFileSync(path, copy);
    flipByte(copy, size - FOOTER_BYTES + inFooter);
    assert.is((await corruption(() => SSTableReader.open(fs, copy), copy)).offset, size - FOOTER_BYTES);
  }
  const truncated = newPath();
  nodeFs.writeFileSync(truncated, nodeFs.readFileSync(path).subarray(0, size - 10));
  await corruption(() => SSTableReader.open(fs, truncated), truncated);
  const tiny = newPath();
  nodeFs.writeFileSync(tiny, new Uint8Array(10));
  await corruption(() => SSTableReader.open(fs, tiny), tiny);
});

test("no single flipped byte anywhere in a small table yields a wrong record", () => {
  const records = [record("a", 9, "one"), record("a", 3, "two", RecordKind.merge), record("ab", 5, "three"), record("b\xff", 1, "")];
  const { path } = writeTable(records, { bloomBitsPerKey: 10, blockBytesTarget: 64 });
  const original = nodeFs.readFileSync(path);
  const copy = newPath();
  let detected = 0;
  for (let offset = 0; offset < original.length; offset++) {
    const bytes = Uint8Array.from(original);
    bytes[offset] = bytes[offset]! ^ 0x01;
    nodeFs.writeFileSync(copy, bytes);
    try {
      const reader = SSTableReader.open(fs, copy);
      try {
        assertRecords(reader.records(), records, `flip at ${offset}`);
        for (const each of records) {
          assertRecords(reader.recordsFor(each.key), modelRecordsFor(records, each.key), `flip at ${offset}`);
        }
      } finally {
        reader.close();
      }
    } catch (error) {
      if ((error as { code?: unknown }).code !== "LOOM_CORRUPTION") throw error;
      assert.is((error as CodedError).path, copy);
      detected++;
    }
  }
  assert.is(detected, original.length, "every flipped byte is detected");
});

test("the writer asserts that records arrive in table order", async () => {
  const handle = fs.open(newPath(), "create");
  const writer = new SSTableWriter(handle, { bloomBitsPerKey: 10 });
  writer.add(record("b", 5, "x"));
  await rejectsWithCode(() => writer.add(record("a", 6, "x")), "LOOM_ASSERTION");
  await rejectsWithCode(() => writer.add(record("b", 5, "x")), "LOOM_ASSERTION");
  await rejectsWithCode(() => writer.add(record("b", 7, "x")), "LOOM_ASSERTION");
  writer.add(record("b", 4, "x"));
  writer.add(record("ba", 9, "x"));
  writer.finish();
  await rejectsWithCode(() => writer.add(record("c", 1, "x")), "LOOM_ASSERTION");
  handle.close();
});

test("writer options outside their limits are refused with a range error naming the option", () => {
  const handle = fs.open(newPath(), "create");
  assert.throws(() => new SSTableWriter(handle, { bloomBitsPerKey: 0 }), /bloomBitsPerKey is 0/);
  assert.throws(() => new SSTableWriter(handle, { bloomBitsPerKey: 10, blockBytesTarget: 1 }), /blockBytesTarget is 1/);
  handle.close();
});

test("a closed reader refuses reads, and a cache without a file number is refused", async () => {
  const { path } = writeTable([record("a", 1, "x")]);
  const reader = SSTableReader.open(fs, path);
  reader.close();
  await rejectsWithCode(() => reader.recordsFor(utf8Encode("a")), "LOOM_CLOSED");
  await rejectsWithCode(() => [...reader.records()], "LOOM_CLOSED");
  await rejectsWithCode(() => SSTableReader.open(fs, path, { cache: new BlockCache({ capacityBytes: 100 }) }), "LOOM_INVALID_ARGUMENT");
});

test("the worked example of docs/formats/sstable.md is exactly what the writer produces", () => {
  const records = [record("apple", 7, "red"), record("apple", 3, "green", RecordKind.merge), record("fig", 5, "")];
  const { path } = writeTable(records, { bloomBitsPerKey: 10 });
  const hex = [...nodeFs.readFileSync(path)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  assert.is(hex, WORKED_EXAMPLE_HEX);
});

/** The 177 bytes shown in docs/formats/sstable.md, "Worked example". */
const WORKED_EXAMPLE_HEX = [
  "00050307016170706c657265640500050302677265656e000300050166696700",
  "0000000100000001027da45b40404040622262420702aaf4bd0a010103020102",
  "05010306010707010108012c0901150a010a0b010003056170706c6504036669",
  "6703d79643d7010001670027047e847172660000000000000006000000000000",
  "002c0000000000000009000000000000003a0000000000000027000000000000",
  "000100000019fa2c54db4c4f4f4d535354",
].join("");

test.run();
