import { test } from "uvu";
import * as assert from "uvu/assert";
import { createPrng } from "../src/io/prng.ts";
import { RealClock } from "../src/io/real_clock.ts";
import { RealFileSystem } from "../src/io/real_file_system.ts";
import { SimFileSystem } from "../src/io/sim_file_system.ts";
import { openStore } from "../src/runtime/open_store.ts";
import { InlineStorageJobs } from "../src/storage/storage_jobs.ts";
import { Store } from "../src/storage/store.ts";
import { setImmediate } from "node:timers";
import { SimClock } from "../src/io/sim_clock.ts";
import { limits } from "../src/util/limits.ts";
import { counterVersion, highestCounterWinsReference } from "./fixtures/highest_counter_rule.ts";
import { bytesOf, openSimStore, temporaryDirectory, textOf } from "./support/store_harness.ts";
import { rejectsWithCode } from "./support/assertions.ts";
import { countFolderReference } from "./fixtures/count_folder.ts";

const v1 = counterVersion(1);
const v2 = counterVersion(2);
const v3 = counterVersion(3);

test("a put is read back with its version and value", async () => {
  const store = await openSimStore(new SimFileSystem(createPrng(1)));
  await store.put("user:1", [{ version: v1, value: "alice" }]);
  const versions = store.get("user:1");
  assert.is(versions.length, 1);
  assert.equal([...versions[0]!.version], [...v1]);
  assert.is(textOf(versions[0]!.value), "alice");
  assert.equal(store.get("user:2"), []);
  await store.close();
});

test("string and byte keys address the same record", async () => {
  const store = await openSimStore(new SimFileSystem(createPrng(2)));
  await store.put(bytesOf("k"), [{ version: v1, value: new Uint8Array([0, 255]) }]);
  assert.equal([...store.get("k")[0]!.value!], [0, 255]);
  await store.close();
});

test("a later put replaces the version set and a delete leaves a tombstone", async () => {
  const store = await openSimStore(new SimFileSystem(createPrng(3)));
  await store.put("k", [{ version: v1, value: "a" }, { version: v2, value: "b" }]);
  assert.is(store.get("k").length, 2);
  await store.put("k", [{ version: v3, value: "c" }]);
  assert.equal(store.get("k").map((v) => textOf(v.value)), ["c"]);
  await store.delete("k", counterVersion(4));
  const after = store.get("k");
  assert.is(after.length, 1);
  assert.is(after[0]!.value, null);
  await store.close();
});

test("merges accumulate siblings until a put supersedes them, across flushes and compaction", async () => {
  const store = await openSimStore(new SimFileSystem(createPrng(4)));
  await store.put("k", [{ version: v1, value: "a" }]);
  await store.flush();
  await store.merge("k", [{ version: v2, value: "b" }]);
  await store.flush();
  await store.merge("k", [{ version: v3, value: "c" }]);
  assert.equal(store.get("k").map((v) => textOf(v.value)), ["c", "b", "a"]);
  await store.compact();
  assert.is(store.stats().tables.length, 1);
  assert.equal(store.get("k").map((v) => textOf(v.value)), ["c", "b", "a"]);
  await store.put("k", [{ version: v3, value: "resolved" }]);
  assert.equal(store.get("k").map((v) => textOf(v.value)), ["resolved"]);
  await store.close();
});

test("a custom merge rule resolves merges on reads and in compaction alike", async () => {
  const fs = new SimFileSystem(createPrng(5));
  const store = await openSimStore(fs, { mergeRule: highestCounterWinsReference });
  await store.merge("k", [{ version: v2, value: "two" }]);
  await store.flush();
  await store.merge("k", [{ version: v1, value: "one" }]);
  assert.equal(store.get("k").map((v) => textOf(v.value)), ["two"]);
  await store.compact();
  assert.equal(store.get("k").map((v) => textOf(v.value)), ["two"]);
  await store.close();
});

test("entries iterates keys in byte order within a range", async () => {
  const store = await openSimStore(new SimFileSystem(createPrng(6)));
  for (const key of ["b", "a", "d", "c", "e"]) await store.put(key, [{ version: v1, value: key.toUpperCase() }]);
  await store.flush();
  await store.put("c", [{ version: v2, value: "C2" }]);
  const seen = [...store.entries({ start: "b", end: "e" })].map((e) => `${textOf(e.key)}=${textOf(e.versions[0]!.value)}`);
  assert.equal(seen, ["b=B", "c=C2", "d=D"]);
  await store.close();
});

test("bad input is refused with a typed error and writes nothing", async () => {
  const store = await openSimStore(new SimFileSystem(createPrng(7)));
  const sequence = store.stats().sequence;
  const cases: [() => unknown, string][] = [
    [() => store.put("", [{ version: v1, value: "x" }]), "LOOM_OUT_OF_RANGE"],
    [() => store.put("x".repeat(limits.keyBytesMax + 1), [{ version: v1, value: "x" }]), "LOOM_OUT_OF_RANGE"],
    [() => store.put(42 as unknown as string, [{ version: v1, value: "x" }]), "LOOM_INVALID_ARGUMENT"],
    [() => store.put("k", [{ version: v1, value: 42 as unknown as string }]), "LOOM_INVALID_ARGUMENT"],
    [() => store.put("k", [{ version: "v" as unknown as Uint8Array, value: "x" }]), "LOOM_INVALID_ARGUMENT"],
    [() => store.put("k", [{ version: v1, value: new Uint8Array(limits.valueBytesMax + 1) }]), "LOOM_OUT_OF_RANGE"],
    [() => store.put("k", "nope" as unknown as []), "LOOM_INVALID_ARGUMENT"],
    [() => store.write([]), "LOOM_OUT_OF_RANGE"],
    [() => store.get(""), "LOOM_OUT_OF_RANGE"],
  ];
  for (const [call, code] of cases) await rejectsWithCode(call, code);
  assert.is(store.stats().sequence, sequence);
  assert.equal([...store.entries()], []);
  await store.close();
});

test("a batch with one bad operation writes none of its operations", async () => {
  const store = await openSimStore(new SimFileSystem(createPrng(8)));
  await rejectsWithCode(
    () =>
      store.write([
        { key: "good", kind: "put", versions: [{ version: v1, value: "x" }] },
        { key: "", kind: "put", versions: [{ version: v1, value: "x" }] },
      ]),
    "LOOM_OUT_OF_RANGE",
  );
  assert.equal(store.get("good"), []);
  await store.close();
});

test("use after close is refused with a closed error", async () => {
  const store = await openSimStore(new SimFileSystem(createPrng(9)));
  await store.close();
  await rejectsWithCode(() => store.put("k", [{ version: v1, value: "x" }]), "LOOM_CLOSED");
  await rejectsWithCode(() => store.get("k"), "LOOM_CLOSED");
});

test("invalid configuration names the field and opens nothing", async () => {
  const fs = new SimFileSystem(createPrng(10));
  for (const [overrides, code, field] of [
    [{ fsync: "sometimes" }, "LOOM_INVALID_ARGUMENT", /fsync/],
    [{ memtableBytes: 10 }, "LOOM_OUT_OF_RANGE", /memtableBytes/],
    [{ bloomBitsPerKey: 0 }, "LOOM_OUT_OF_RANGE", /bloomBitsPerKey/],
  ] as const) {
    await rejectsWithCode(() => openSimStore(fs, overrides as never), code, field);
  }
  assert.is(fs.exists("/store/MANIFEST"), false);
});

test("on the real disk, flushes and compactions run in the piscina pool and data survives reopen", async () => {
  const directory = temporaryDirectory("store");
  try {
    let store = await openStore({ directory: directory.path, memtableBytes: 256 * 1024, compactionTablesMin: 3 });
    const value = "v".repeat(200);
    for (let round = 0; round < 8; round++) {
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 500; i++) writes.push(store.put(`key-${round}-${i}`, [{ version: v1, value: `${value}${round}-${i}` }]));
      await Promise.all(writes);
    }
    await store.flush();
    await store.idle();
    const stats = store.stats();
    assert.ok(stats.flushes >= 3, `flushes: ${stats.flushes}`);
    assert.ok(stats.compactions >= 1, `compactions: ${stats.compactions}`);
    await store.close();
    store = await openStore({ directory: directory.path, memtableBytes: 256 * 1024 });
    for (let round = 0; round < 8; round += 3) {
      assert.is(textOf(store.get(`key-${round}-7`)[0]?.value), `${value}${round}-7`);
    }
    assert.is([...store.entries()].length, 8 * 500);
    await store.close();
  } finally {
    directory.remove();
  }
});

test("on the real disk, unflushed writes are replayed from the commit log after reopen", async () => {
  const directory = temporaryDirectory("replay");
  const fs = new RealFileSystem();
  try {
    let store = await Store.open({ directory: directory.path, fs, clock: new RealClock(), jobs: new InlineStorageJobs(fs), fsync: "batch" });
    for (let i = 0; i < 100; i++) await store.put(`k${i}`, [{ version: v1, value: `value ${i}` }]);
    await store.close();
    store = await Store.open({ directory: directory.path, fs, clock: new RealClock(), jobs: new InlineStorageJobs(fs) });
    assert.is(store.stats().recovery.recordsReplayed, 100);
    assert.is(textOf(store.get("k42")[0]?.value), "value 42");
    await store.close();
  } finally {
    directory.remove();
  }
});

test("a range scan keeps its snapshot while its memtable is flushed and the next memtable reuses arenas", async () => {
  const store = await openSimStore(new SimFileSystem(createPrng(11)));
  const value = "x".repeat(300);
  for (let i = 0; i < 100; i++) await store.put(`a-${String(i).padStart(3, "0")}`, [{ version: v1, value: `${value}${i}` }]);
  const scan = store.entries();
  const first = scan.next();
  assert.is(textOf(first.value!.key), "a-000");
  // Rotate and flush the scanned memtable, then write enough for several more rotations.
  for (let round = 0; round < 6; round++) {
    for (let i = 0; i < 200; i++) await store.put(`b-${round}-${i}`, [{ version: v2, value: "y".repeat(300) }]);
    await store.flush();
  }
  const rest = [...scan];
  assert.is(rest.length, 99);
  rest.forEach((entry, index) => {
    assert.is(textOf(entry.key), `a-${String(index + 1).padStart(3, "0")}`);
    assert.is(textOf(entry.versions[0]!.value), `${value}${index + 1}`);
  });
  assert.ok(store.stats().flushes >= 6);
  await store.close();
});

test("a scan job folds the snapshot taken at its call while writes, flushes and compactions go on", async () => {
  const fs = new SimFileSystem(createPrng(12));
  const inline = new InlineStorageJobs(fs);
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  // Scans wait at the gate: meanwhile the store rotates, flushes and compacts away their inputs.
  const jobs = { ...wrap(inline), scan: async (request: Parameters<typeof inline.scan>[0]) => (await gate, inline.scan(request)) };
  const store = await Store.open({ directory: "/store", fs, clock: new SimClock(), jobs, fsync: "always", memtableBytes: 64 * 1024, compactionTablesMin: 2 });
  for (let i = 0; i < 300; i++) await store.put(`old-${i}`, [{ version: v1, value: "o".repeat(100) }]);
  await store.flush();
  for (let i = 0; i < 50; i++) await store.put(`mem-${i}`, [{ version: v1, value: "m" }]);
  const folded = store.scan(countFolderReference, { prefix: "new-" });
  for (let i = 0; i < 300; i++) await store.put(`new-${i}`, [{ version: v2, value: "n".repeat(100) }]);
  for (let i = 0; i < 300; i += 2) await store.put(`old-${i}`, []);
  await store.compact();
  assert.ok(store.stats().tables.length === 1, "the scanned tables were compacted into one");
  release();
  assert.equal(await folded, { keys: 350, matching: [] }, "the snapshot of the call: neither later keys nor later deletes");
  assert.is([...store.entries()].length, 150 + 50 + 300);
  await store.close();
});

test("a scan job on the real disk runs in the piscina pool", async () => {
  const directory = temporaryDirectory("scan");
  try {
    const store = await openStore({ directory: directory.path, memtableBytes: 256 * 1024 });
    // Side by side: one awaited put at a time would wait out the fsync batch window 2,000 times.
    await Promise.all(Array.from({ length: 2000 }, (_, i) => store.put(`k-${i}`, [{ version: v1, value: "v".repeat(50) }])));
    await store.flush();
    for (let i = 0; i < 10; i++) await store.put(`late-${i}`, [{ version: v1, value: "l" }]);
    assert.equal(await store.scan(countFolderReference, { prefix: "late-" }), { keys: 2010, matching: Array.from({ length: 10 }, (_, i) => `late-${i}`).sort() });
    await store.close();
  } finally {
    directory.remove();
  }
});

function wrap(inline: InlineStorageJobs) {
  return { flush: inline.flush.bind(inline), compact: inline.compact.bind(inline), scan: inline.scan.bind(inline), close: inline.close.bind(inline) };
}

test("sustained writes still get compacted: compaction takes turns with flushes", async () => {
  // Jobs that take real time, like the pool's, so that writers keep frozen memtables waiting.
  const fs = new SimFileSystem(createPrng(12));
  const inline = new InlineStorageJobs(fs);
  const later = <T>(work: () => Promise<T>) => new Promise<T>((resolve, reject) => setTimeout(() => work().then(resolve, reject), 5));
  const jobs = {
    flush: (request: Parameters<typeof inline.flush>[0]) => later(() => inline.flush(request)),
    compact: (request: Parameters<typeof inline.compact>[0]) => later(() => inline.compact(request)),
    scan: (request: Parameters<typeof inline.scan>[0]) => later(() => inline.scan(request)),
    close: () => inline.close(),
  };
  const store = await Store.open({ directory: "/store", fs, clock: new SimClock(), jobs, fsync: "always", memtableBytes: 64 * 1024, compactionTablesMin: 2 });
  for (let wave = 0; wave < 40; wave++) {
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 150; i++) writes.push(store.put(`k-${(wave * 150 + i) % 700}`, [{ version: counterVersion(wave), value: "z".repeat(200) }]));
    await Promise.all(writes);
  }
  const stats = store.stats();
  assert.ok(stats.flushes >= 10, `flushes: ${stats.flushes}`);
  assert.ok(stats.compactions > 0, `no compaction ran during ${stats.flushes} flushes`);
  await store.close();
});

test("under fsync batch with no window, a lone put is synced at the end of its turn and writes of one turn share one sync", async () => {
  const clock = new SimClock();
  const store = await openSimStore(new SimFileSystem(createPrng(31)), { fsync: "batch" }, clock);
  assert.is(store.config.fsyncBatchWindowMs, 0, "the default window");
  const syncsBefore = store.stats().logSyncs;
  await store.put("lone", [{ version: bytesOf("v1"), value: bytesOf("a") }]);
  assert.is(store.stats().logSyncs, syncsBefore + 1, "a lone put waits for no clock time, one sync");
  await Promise.all(["a", "b", "c"].map((key) => store.put(key, [{ version: bytesOf("v1"), value: bytesOf(key) }])));
  assert.is(store.stats().logSyncs, syncsBefore + 2, "three puts of one turn: one sync");
  await store.close();
});

test("under fsync batch with a window, writes wait out the window for company and then share one sync", async () => {
  const clock = new SimClock();
  const store = await openSimStore(new SimFileSystem(createPrng(32)), { fsync: "batch", fsyncBatchWindowMs: 5 }, clock);
  const syncsBefore = store.stats().logSyncs;
  let settled = 0;
  const first = store.put("a", [{ version: bytesOf("v1"), value: bytesOf("a") }]).then(() => settled++);
  await new Promise((resolve) => setImmediate(resolve));
  const second = store.put("b", [{ version: bytesOf("v1"), value: bytesOf("b") }]).then(() => settled++);
  clock.advance(4);
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(settled, 0, "nothing is acknowledged before the window closes");
  assert.is(store.stats().logSyncs, syncsBefore);
  clock.advance(1);
  await Promise.all([first, second]);
  assert.is(settled, 2);
  assert.is(store.stats().logSyncs, syncsBefore + 1, "both writes, one sync");
  await store.close();
});

test.run();
