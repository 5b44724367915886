import { test } from "uvu";
import * as assert from "uvu/assert";
import type { FileHandle } from "../src/io/file_system.ts";
import { createPrng } from "../src/io/prng.ts";
import { type CrashOptions, SimFileSystem } from "../src/io/sim_file_system.ts";
import { rejectsWithCode } from "./support/assertions.ts";

const DIRECTORY = "/data";
const LOG = "/data/000001.log";

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

function range(start: number, end: number): Uint8Array {
  return Uint8Array.from({ length: end - start }, (_, index) => start + index);
}

/** A simulator with /data made and a log file whose directory entry is already durable. */
function withDurableLog(seed = 1): { fs: SimFileSystem; log: FileHandle } {
  const fs = new SimFileSystem(createPrng(seed));
  fs.makeDirectory(DIRECTORY);
  const log = fs.open(LOG, "create");
  fs.syncDirectory(DIRECTORY);
  return { fs, log };
}

const NOTHING_UNSYNCED: CrashOptions = { tornTail: "none", unsyncedTruncate: "revert" };

test("a crash drops every lock, as the death of the holding process would", async () => {
  const fs = new SimFileSystem(createPrng(1));
  fs.makeDirectory(DIRECTORY);
  const held = fs.lock(`${DIRECTORY}/LOCK`);
  await rejectsWithCode(() => fs.lock(`${DIRECTORY}/LOCK`), "LOOM_LOCKED");
  fs.crash(NOTHING_UNSYNCED);
  const next = fs.lock(`${DIRECTORY}/LOCK`);
  held.release(); // the lost holder's release must not free the new one
  await rejectsWithCode(() => fs.lock(`${DIRECTORY}/LOCK`), "LOOM_LOCKED");
  next.release();
});

test("bytes appended but not synced are lost on a crash", () => {
  const { fs, log } = withDurableLog();
  log.append(bytes(1, 2, 3));
  log.sync();
  log.append(bytes(4, 5));
  fs.crash(NOTHING_UNSYNCED);
  assert.equal(fs.readFile(LOG), bytes(1, 2, 3));
});

test("synced bytes survive a crash whatever the torn-tail policy", () => {
  for (const tornTail of ["none", "random", () => 0] as const) {
    const { fs, log } = withDurableLog();
    log.append(range(0, 100));
    log.sync();
    fs.crash({ tornTail });
    assert.equal(fs.readFile(LOG), range(0, 100));
  }
});

test("a torn tail keeps a prefix of the unsynced bytes, and every length from 0 to n is reachable", () => {
  const unsynced = range(10, 18);
  for (let kept = 0; kept <= unsynced.length; kept++) {
    const { fs, log } = withDurableLog();
    log.append(range(0, 10));
    log.sync();
    log.append(unsynced);
    const calls: [string, number][] = [];
    fs.crash({
      tornTail: (path, unsyncedByteCount) => {
        calls.push([path, unsyncedByteCount]);
        return kept;
      },
    });
    assert.equal(calls, [[LOG, 8]]);
    assert.equal(fs.readFile(LOG), range(0, 10 + kept));
  }
});

test("a random torn tail always keeps the synced bytes plus some prefix of the rest, of varying length", () => {
  const lengths = new Set<number>();
  for (let seed = 0; seed < 200; seed++) {
    const { fs, log } = withDurableLog(seed);
    log.append(range(0, 4));
    log.sync();
    log.append(range(4, 20));
    fs.crash();
    const content = fs.readFile(LOG);
    assert.ok(content.length >= 4 && content.length <= 20);
    assert.equal(content, range(0, content.length));
    lengths.add(content.length);
  }
  assert.ok(lengths.has(4) && lengths.has(20), "keeps none and all");
  assert.ok(lengths.size > 6, `only ${lengths.size} distinct lengths`);
});

test("a torn-tail function returning a count out of range is refused and changes nothing", async () => {
  const { fs, log } = withDurableLog();
  log.append(bytes(1, 2));
  await rejectsWithCode(() => fs.crash({ tornTail: () => 3 }), "LOOM_OUT_OF_RANGE");
  assert.equal(fs.readFile(LOG), bytes(1, 2));
  assert.is(log.size(), 2);
  assert.is(fs.openHandleCount(), 1);
});

test("a synced file whose directory was never synced disappears on a crash", () => {
  const fs = new SimFileSystem(createPrng(1));
  fs.makeDirectory(DIRECTORY);
  const handle = fs.open("/data/orphan", "create");
  handle.append(bytes(1));
  handle.sync();
  fs.crash();
  assert.not.ok(fs.exists("/data/orphan"));
  assert.equal(fs.list(DIRECTORY), []);
});

test("a file whose directory entry was synced but whose data was not survives empty", () => {
  const { fs, log } = withDurableLog();
  log.append(bytes(1, 2, 3));
  fs.crash(NOTHING_UNSYNCED);
  assert.ok(fs.exists(LOG));
  assert.equal(fs.readFile(LOG), bytes());
});

test("a rename not followed by syncDirectory reverts on a crash, restoring the replaced file", () => {
  const fs = new SimFileSystem(createPrng(1));
  fs.makeDirectory(DIRECTORY);
  fs.setContent("/data/CURRENT", bytes(1));
  fs.setContent("/data/CURRENT.tmp", bytes(2));
  fs.rename("/data/CURRENT.tmp", "/data/CURRENT");
  assert.equal(fs.readFile("/data/CURRENT"), bytes(2));
  fs.crash();
  assert.equal(fs.readFile("/data/CURRENT"), bytes(1));
  assert.equal(fs.readFile("/data/CURRENT.tmp"), bytes(2));
});

test("a rename followed by syncDirectory survives a crash", () => {
  const fs = new SimFileSystem(createPrng(1));
  fs.makeDirectory(DIRECTORY);
  fs.setContent("/data/CURRENT", bytes(1));
  fs.setContent("/data/CURRENT.tmp", bytes(2));
  fs.rename("/data/CURRENT.tmp", "/data/CURRENT");
  fs.syncDirectory(DIRECTORY);
  fs.crash();
  assert.equal(fs.list(DIRECTORY), ["CURRENT"]);
  assert.equal(fs.readFile("/data/CURRENT"), bytes(2));
});

test("a removal not followed by syncDirectory is undone by a crash", () => {
  const fs = new SimFileSystem(createPrng(1));
  fs.makeDirectory(DIRECTORY);
  fs.setContent("/data/old.sst", bytes(1, 2));
  fs.setContent("/data/older.sst", bytes(3));
  fs.remove("/data/old.sst");
  fs.remove("/data/older.sst");
  fs.syncDirectory(DIRECTORY);
  fs.setContent("/data/x", bytes(0));
  fs.remove("/data/x");
  fs.crash();
  assert.equal(fs.list(DIRECTORY), ["x"]);
});

test("directories are durable as soon as they are made or removed", () => {
  const fs = new SimFileSystem(createPrng(1));
  fs.makeDirectory("/data/tables");
  fs.makeDirectory("/trash/deep");
  fs.removeTree("/trash");
  fs.crash();
  assert.ok(fs.exists("/data/tables"));
  assert.not.ok(fs.exists("/trash"));
});

test("a crash invalidates every open handle, and the file system works again afterwards", async () => {
  const { fs, log } = withDurableLog();
  const reader = fs.open(LOG, "read");
  assert.is(fs.openHandleCount(), 2);
  fs.crash();
  assert.is(fs.openHandleCount(), 0);
  for (const use of [
    () => log.append(bytes(1)),
    () => log.sync(),
    () => log.size(),
    () => log.truncate(0),
    () => reader.readAt(new Uint8Array(1), 0),
  ]) {
    await rejectsWithCode(use, "LOOM_IO");
  }
  log.close();
  const again = fs.open(LOG, "append");
  again.append(bytes(7));
  again.sync();
  again.close();
  assert.equal(fs.readFile(LOG), bytes(7));
  assert.is(fs.openHandleCount(), 0);
});

test("failNextSync makes the matching sync throw and keeps its data from becoming durable", async () => {
  const { fs, log } = withDurableLog();
  log.append(bytes(1));
  log.sync();
  log.append(bytes(2));
  fs.failNextSync(/\.log$/);
  await rejectsWithCode(() => log.sync(), "LOOM_IO", /injected/);
  assert.equal(fs.durableContent(LOG), bytes(1));
  fs.crash(NOTHING_UNSYNCED);
  assert.equal(fs.readFile(LOG), bytes(1));
});

test("failNextSync fires once, and only for a matching path", async () => {
  const { fs, log } = withDurableLog();
  const other = fs.open("/data/other", "create");
  fs.failNextSync(LOG);
  other.sync();
  fs.syncDirectory(DIRECTORY);
  await rejectsWithCode(() => log.sync(), "LOOM_IO");
  log.append(bytes(3));
  log.sync();
  assert.equal(fs.durableContent(LOG), bytes(3));
});

test("failNextSync also fails a directory sync, leaving the entries not durable", async () => {
  const fs = new SimFileSystem(createPrng(1));
  fs.makeDirectory(DIRECTORY);
  fs.open("/data/new", "create").close();
  fs.failNextSync();
  await rejectsWithCode(() => fs.syncDirectory(DIRECTORY), "LOOM_IO");
  fs.crash();
  assert.not.ok(fs.exists("/data/new"));
});

test("flipByte corrupts current and durable content alike, and the change is visible on read", async () => {
  const { fs, log } = withDurableLog();
  log.append(range(0, 16));
  log.sync();
  fs.flipByte(LOG, 5);
  const expected = range(0, 16);
  expected[5] = 5 ^ 0xff;
  assert.equal(fs.readFile(LOG), expected);
  assert.equal(fs.durableContent(LOG), expected);
  fs.crash();
  assert.equal(fs.readFile(LOG), expected);
  await rejectsWithCode(() => fs.flipByte(LOG, 16), "LOOM_OUT_OF_RANGE");
});

test("with read flip probability 1 every read returns exactly one wrong byte while data at rest stays intact", () => {
  const { fs, log } = withDurableLog();
  log.append(range(0, 64));
  fs.setReadFlipProbability(1);
  const reader = fs.open(LOG, "read");
  for (let i = 0; i < 20; i++) {
    const buffer = new Uint8Array(64);
    assert.is(reader.readAt(buffer, 0), 64);
    const wrong = buffer.filter((value, index) => value !== index).length;
    assert.is(wrong, 1);
    assert.is(fs.readFile(LOG).filter((value, index) => value !== index).length, 1);
  }
  assert.equal(fs.fileContent(LOG), range(0, 64));
  fs.setReadFlipProbability(0);
  assert.equal(fs.readFile(LOG), range(0, 64));
});

test("a truncate that was not synced may be lost in a crash, a synced one is kept", () => {
  const setUp = (): { fs: SimFileSystem; log: FileHandle } => {
    const { fs, log } = withDurableLog();
    log.append(range(0, 10));
    log.sync();
    log.truncate(4);
    log.append(bytes(99));
    return { fs, log };
  };
  const reverted = setUp();
  reverted.fs.crash({ unsyncedTruncate: "revert" });
  assert.equal(reverted.fs.readFile(LOG), range(0, 10));

  const kept = setUp();
  kept.fs.crash({ unsyncedTruncate: "keep", tornTail: "none" });
  assert.equal(kept.fs.readFile(LOG), range(0, 4));

  const synced = setUp();
  synced.log.sync();
  synced.fs.crash();
  assert.equal(synced.fs.readFile(LOG), bytes(0, 1, 2, 3, 99));
});

test("setContent writes durable content by default, or only current content when asked", () => {
  const fs = new SimFileSystem(createPrng(1));
  fs.makeDirectory(DIRECTORY);
  fs.setContent("/data/durable", range(0, 8));
  fs.setContent("/data/volatile", bytes(1), { durable: false });
  fs.setContent("/data/durable", range(0, 3), { durable: false });
  assert.equal(fs.fileContent("/data/durable"), range(0, 3));
  assert.equal(fs.durableContent("/data/durable"), range(0, 8));
  fs.crash(NOTHING_UNSYNCED);
  assert.equal(fs.list(DIRECTORY), ["durable"]);
  assert.equal(fs.readFile("/data/durable"), range(0, 8));
});

test("totalBytes sums the current size of reachable files", () => {
  const fs = new SimFileSystem(createPrng(1));
  fs.makeDirectory("/a/b");
  fs.setContent("/a/one", range(0, 10));
  fs.setContent("/a/b/two", range(0, 5), { durable: false });
  assert.is(fs.totalBytes(), 15);
  fs.remove("/a/one");
  assert.is(fs.totalBytes(), 5);
});

/** A little workload with random crashes; returns a transcript of what survived. */
function crashWorkload(seed: number): string {
  const prng = createPrng(seed);
  const fs = new SimFileSystem(prng.fork());
  fs.makeDirectory(DIRECTORY);
  fs.setReadFlipProbability(0.05);
  const transcript: string[] = [];
  for (let round = 0; round < 20; round++) {
    const path = `/data/${prng.nextInt(3)}.log`;
    const handle = fs.open(path, "append");
    for (let i = prng.nextInt(5); i >= 0; i--) handle.append(range(0, 1 + prng.nextInt(20)));
    if (prng.chance(0.5)) handle.sync();
    if (prng.chance(0.5)) fs.syncDirectory(DIRECTORY);
    if (prng.chance(0.3)) handle.truncate(prng.nextInt(handle.size() + 1));
    if (prng.chance(0.3)) {
      fs.crash();
      transcript.push(fs.list(DIRECTORY).map((name) => `${name}:${[...fs.readFile(`/data/${name}`)].join(".")}`).join("|"));
    } else {
      handle.close();
    }
  }
  return transcript.join("\n");
}

test("the same seed gives the same outcome, different seeds give different ones", () => {
  assert.is(crashWorkload(2024), crashWorkload(2024));
  const outcomes = new Set([1, 2, 3, 4, 5].map(crashWorkload));
  assert.ok(outcomes.size > 1);
});

test("the simulator never consults Math.random", () => {
  const original = Math.random;
  Math.random = () => {
    throw new Error("Math.random called");
  };
  try {
    crashWorkload(77);
  } finally {
    Math.random = original;
  }
});

test("paths are normalized: relative paths start at the root, repeated slashes and dots are ignored", () => {
  const fs = new SimFileSystem(createPrng(1));
  fs.makeDirectory("data//tables/.");
  fs.setContent("./data/tables/../x", bytes(1));
  assert.ok(fs.exists("/data/x"));
  assert.equal(fs.list("/data/"), ["tables", "x"]);
});

test.run();
