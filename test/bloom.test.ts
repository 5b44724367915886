import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  bloomFalsePositiveRate,
  bloomProbeCount,
  BloomFilterBuilder,
  buildBloomFilter,
  keyHashes,
  mayContain,
  mayContainHashes,
} from "../src/storage/bloom.ts";
import { utf8Encode } from "../src/util/bytes.ts";
import { createPrng } from "../src/io/prng.ts";
import { isError } from "./support/assertions.ts";
import { rejectsWithCode } from "./support/assertions.ts";

/** Seeded test randomness from the project's PRNG: the same seed gives the same data on every run. */
function prng(seed: number): () => number {
  const random = createPrng(seed);
  return () => random.nextFloat();
}

function bigEndianKey(value: number): Uint8Array {
  const key = new Uint8Array(8);
  new DataView(key.buffer).setFloat64(0, value);
  return key;
}

function measureFalsePositives(present: Uint8Array[], absent: Uint8Array[], bitsPerKey: number) {
  const filter = buildBloomFilter(present, bitsPerKey);
  for (const key of present) assert.ok(mayContain(filter, key), "a present key was reported absent");
  let positives = 0;
  for (const key of absent) if (mayContain(filter, key)) positives++;
  const theory = bloomFalsePositiveRate({
    keyCount: present.length,
    filterBits: (filter.length - 1) * 8,
    probes: bloomProbeCount(bitsPerKey),
  });
  return { measured: positives / absent.length, theory };
}

test("ten bits per key give seven probes", () => {
  assert.is(bloomProbeCount(10), 7);
  assert.is(bloomProbeCount(1), 1);
  assert.is(bloomProbeCount(32), 22);
});

test("the false-positive rate at 10 bits per key is within 25% of theory for text keys", () => {
  const count = 100_000;
  const present = Array.from({ length: count }, (_, i) => utf8Encode(`user:${i}`));
  const absent = Array.from({ length: count }, (_, i) => utf8Encode(`user:${i + count}`));
  const { measured, theory } = measureFalsePositives(present, absent, 10);
  assert.ok(Math.abs(measured - theory) <= 0.25 * theory, `measured ${measured}, theory ${theory}`);
  assert.ok(theory > 0.008 && theory < 0.0085, `theory ${theory}`);
});

test("the false-positive rate at 10 bits per key is within 25% of theory for binary integer keys", () => {
  const count = 120_000;
  const present = Array.from({ length: count }, (_, i) => bigEndianKey(i * 2));
  const absent = Array.from({ length: count }, (_, i) => bigEndianKey(i * 2 + 1));
  const { measured, theory } = measureFalsePositives(present, absent, 10);
  assert.ok(Math.abs(measured - theory) <= 0.25 * theory, `measured ${measured}, theory ${theory}`);
});

test("a filter never reports a present key absent, whatever the key length and bytes", () => {
  const random = prng(7);
  const keys: Uint8Array[] = [];
  for (let i = 0; i < 20_000; i++) {
    const key = new Uint8Array(Math.floor(random() * 41));
    for (let j = 0; j < key.length; j++) key[j] = random() < 0.3 ? (random() < 0.5 ? 0x00 : 0xff) : Math.floor(random() * 256);
    keys.push(key);
  }
  for (const bitsPerKey of [1, 4, 10, 32]) {
    const filter = buildBloomFilter(keys, bitsPerKey);
    for (const key of keys) assert.ok(mayContain(filter, key), `false negative at ${bitsPerKey} bits per key`);
  }
});

test("a key hashed once answers every filter as hashing it per filter does", () => {
  const random = prng(11);
  const tables = Array.from({ length: 4 }, (_, table) => Array.from({ length: 2_000 }, (_, index) => utf8Encode(`t${table}-key-${index}`)));
  const filters = tables.map((keys, table) => buildBloomFilter(keys, [1, 4, 10, 32][table]));
  const hashes = { first: 0, second: 0 };
  let positives = 0;
  for (let index = 0; index < 5_000; index++) {
    const key = random() < 0.5 ? tables[index % 4]![index % 2_000]! : utf8Encode(`absent-${index}`);
    keyHashes(key, hashes);
    for (const filter of filters) {
      const answer = mayContainHashes(filter, hashes);
      assert.is(answer, mayContain(filter, key));
      if (answer) positives++;
    }
  }
  assert.ok(positives > 2_500, "present keys were found");
  assert.is(mayContainHashes(new Uint8Array(1), hashes), false, "an empty filter matches nothing");
});

test("the serialized filter is the bit array followed by the probe count", () => {
  const builder = new BloomFilterBuilder(10);
  for (let i = 0; i < 1000; i++) builder.add(utf8Encode(`k${i}`));
  const filter = builder.finish();
  assert.is(builder.keyCount, 1000);
  assert.is(filter.length, 10_000 / 8 + 1);
  assert.is(filter[filter.length - 1], 7);
});

test("a small filter gets at least 64 bits and an empty one matches nothing", () => {
  const tiny = buildBloomFilter([utf8Encode("only")], 10);
  assert.is(tiny.length, 8 + 1);
  assert.ok(mayContain(tiny, utf8Encode("only")));
  const empty = buildBloomFilter([], 10);
  assert.is(empty.length, 8 + 1);
  assert.not.ok(mayContain(empty, utf8Encode("only")));
  assert.not.ok(mayContain(new Uint8Array(0), utf8Encode("only")));
});

test("a filter read through a view inside a larger buffer answers like the original", () => {
  const keys = Array.from({ length: 500 }, (_, i) => utf8Encode(`view-${i}`));
  const filter = buildBloomFilter(keys, 10);
  const host = new Uint8Array(filter.length + 37);
  host.fill(0xff);
  host.set(filter, 13);
  const view = host.subarray(13, 13 + filter.length);
  for (let i = 0; i < 2000; i++) {
    const key = utf8Encode(`view-${i}`);
    assert.is(mayContain(view, key), mayContain(filter, key));
  }
});

test("a probe count above 30 is reserved and matches every key", () => {
  const filter = new Uint8Array(9);
  filter[8] = 31;
  assert.ok(mayContain(filter, utf8Encode("anything")));
});

test("bits per key outside (0, 64] are refused with a range error", async () => {
  await rejectsWithCode(() => new BloomFilterBuilder(0), "LOOM_OUT_OF_RANGE", /bits per key/);
  await rejectsWithCode(() => new BloomFilterBuilder(Number.NaN), "LOOM_OUT_OF_RANGE");
});

test.run();
