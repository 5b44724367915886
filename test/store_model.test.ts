/**
 * Property test: random sequences of put / merge / delete / get / flush / compact / reopen, checked
 * against an in-memory model after every read, on the simulated file system (many seeds) and once
 * on the real disk with the piscina pool.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Prng } from "../src/io/prng.ts";
import { createPrng } from "../src/io/prng.ts";
import { SimFileSystem } from "../src/io/sim_file_system.ts";
import { openStore } from "../src/runtime/open_store.ts";
import { keepDistinctVersions } from "../src/storage/merge_rule.ts";
import type { Store } from "../src/storage/store.ts";
import type { Version } from "../src/storage/version_set_format.ts";
import { compareBytes, equalBytes } from "../src/util/bytes.ts";
import { counterVersion } from "./fixtures/highest_counter_rule.ts";
import { bytesOf, openSimStore, temporaryDirectory } from "./support/store_harness.ts";

type Model = Map<string, Version[]>;

function describeVersions(versions: readonly Version[]): string {
  return versions.map((v) => `${[...v.version].join(".")}=${v.value ? v.value.length + ":" + [...v.value.subarray(0, 4)].join(",") : "tombstone"}`).join(" | ");
}

function randomValue(prng: Prng): Uint8Array {
  const value = new Uint8Array(prng.nextInt(400));
  for (let i = 0; i < value.length; i++) value[i] = prng.nextInt(256);
  return value;
}

/** Whether two version lists are the same: each version's bytes, and each value's bytes or both tombstones. */
function sameVersions(a: readonly Version[], b: readonly Version[]): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) {
    const x = a[index]!;
    const y = b[index]!;
    if (!equalBytes(x.version, y.version)) return false;
    if (x.value === null || y.value === null ? x.value !== y.value : !equalBytes(x.value, y.value)) return false;
  }
  return true;
}

/** Asserts `actual` equals `expected` (the check runs on every read; the descriptions only on a mismatch). */
function checkVersions(actual: readonly Version[], expected: readonly Version[], message: string): void {
  if (sameVersions(actual, expected)) return;
  assert.is(describeVersions(actual), describeVersions(expected), message);
  assert.unreachable(`${message}: values differ past their first 4 bytes`);
}

function checkKey(store: Store, model: Model, key: string, context: string): void {
  const expected = model.get(key) ?? [];
  const actual = store.get(key);
  checkVersions(actual, expected, `${context}: key ${key}`);
}

const decoder = new TextDecoder();

function checkAll(store: Store, model: Model, context: string): void {
  // Each key's bytes once (the sort compares them many times).
  const expected = [...model.entries()]
    .filter(([, v]) => v.length > 0)
    .map(([key, versions]) => ({ key, versions, bytes: bytesOf(key) }))
    .sort((a, b) => compareBytes(a.bytes, b.bytes));
  const actual = [...store.entries()];
  assert.is(actual.length, expected.length, `${context}: live key count`);
  actual.forEach((entry, i) => {
    const { key, versions, bytes } = expected[i]!;
    if (!equalBytes(entry.key, bytes)) assert.is(decoder.decode(entry.key), key, `${context}: key order`);
    checkVersions(entry.versions, versions, `${context}: key ${key}`);
  });
}

async function runScenario(prng: Prng, steps: number, reopen: () => Promise<Store>, initial: Store): Promise<Store> {
  let store = initial;
  const model: Model = new Map();
  let counter = 0;
  const keyCount = 40 + prng.nextInt(200);
  for (let step = 0; step < steps; step++) {
    const key = `key-${prng.nextInt(keyCount)}`;
    const roll = prng.nextInt(1000);
    const context = `step ${step}`;
    if (roll < 350) {
      const versions = [{ version: counterVersion(++counter), value: randomValue(prng) }];
      if (prng.chance(0.2)) versions.push({ version: counterVersion(++counter), value: randomValue(prng) });
      await store.put(key, versions);
      model.set(key, versions);
    } else if (roll < 550) {
      const versions = [{ version: counterVersion(prng.chance(0.1) ? Math.max(1, counter) : ++counter), value: randomValue(prng) }];
      await store.merge(key, versions);
      model.set(key, keepDistinctVersions.merge([...versions, ...(model.get(key) ?? [])]));
    } else if (roll < 650) {
      const version = counterVersion(++counter);
      await store.delete(key, version);
      model.set(key, [{ version, value: null }]);
    } else if (roll < 970) {
      checkKey(store, model, key, context);
    } else if (roll < 982) {
      await store.flush();
    } else if (roll < 990) {
      await store.compact();
      checkAll(store, model, `${context} after compaction`);
    } else {
      await store.close();
      store = await reopen();
      checkAll(store, model, `${context} after reopen`);
    }
  }
  checkAll(store, model, "end");
  return store;
}

test("random operations on the simulated disk always agree with the model (40 seeds)", async () => {
  for (let seed = 1; seed <= 40; seed++) {
    const prng = createPrng(seed);
    const fs = new SimFileSystem(createPrng(seed * 7919));
    const overrides = { compactionTablesMin: 2 + prng.nextInt(3), bloomBitsPerKey: 1 + prng.nextInt(12) };
    const store = await runScenario(prng, 1500, () => openSimStore(fs, overrides), await openSimStore(fs, overrides));
    await store.close();
  }
});

test("random operations on the real disk with the piscina pool agree with the model", async () => {
  const directory = temporaryDirectory("model");
  try {
    const options = { directory: directory.path, memtableBytes: 64 * 1024, compactionTablesMin: 3, fsync: "never" as const };
    const store = await runScenario(createPrng(4242), 3000, () => openStore(options), await openStore(options));
    assert.ok(store.stats().flushes + store.stats().tables.length > 0, "the scenario reached the tables");
    await store.close();
  } finally {
    directory.remove();
  }
});

test.run();
