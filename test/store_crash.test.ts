/**
 * Crash tests. On the simulated disk: the commit log cut at every byte offset of its last records,
 * a flipped byte mid-log, and power lost at 1,000 random points of a write workload (mid-flush,
 * mid-compaction and mid-manifest update included). The scenarios that can run on the real disk do.
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { FileSystem } from "../src/io/file_system.ts";
import { createPrng, type Prng } from "../src/io/prng.ts";
import { RealClock } from "../src/io/real_clock.ts";
import { RealFileSystem } from "../src/io/real_file_system.ts";
import { SimClock } from "../src/io/sim_clock.ts";
import { SimFileSystem } from "../src/io/sim_file_system.ts";
import { readLog } from "../src/storage/log_reader.ts";
import { parseFileName, readManifest } from "../src/storage/manifest.ts";
import { InlineStorageJobs } from "../src/storage/storage_jobs.ts";
import { Store } from "../src/storage/store.ts";
import { counterVersion } from "./fixtures/highest_counter_rule.ts";
import { CrashingFileSystem } from "./support/crashing_file_system.ts";
import { STORE_DIRECTORY, openSimStore, temporaryDirectory, textOf } from "./support/store_harness.ts";
import { rejectsWithCode } from "./support/assertions.ts";

const RECORDS = 24;

/** Writes RECORDS acknowledged puts (one log record each) and returns the log's path and record offsets. */
async function writeLog(store: Store, fs: FileSystem, directory: string) {
  for (let i = 0; i < RECORDS; i++) await store.put(`key-${i}`, [{ version: counterVersion(i + 1), value: `value-${i}-${"x".repeat(i * 7)}` }]);
  const logName = fs.list(directory).find((name) => name.endsWith(".log"))!;
  const path = `${directory}/${logName}`;
  const { recordOffsets } = readLog(fs, path);
  assert.is(recordOffsets.length, RECORDS);
  return { path, recordOffsets, content: fs.readFile(path).slice(), manifest: fs.readFile(`${directory}/MANIFEST`).slice() };
}

function checkAfterCut(store: Store, recordOffsets: number[], contentLength: number, cut: number): void {
  for (let i = 0; i < RECORDS; i++) {
    const start = recordOffsets[i]!;
    const end = recordOffsets[i + 1] ?? contentLength;
    const value = textOf(store.get(`key-${i}`)[0]?.value);
    if (end <= cut) assert.is(value, `value-${i}-${"x".repeat(i * 7)}`, `record ${i} ends before cut ${cut}`);
    else if (start + 7 >= cut) assert.is(value, null, `record ${i} starts after cut ${cut}`);
    else assert.ok(value === null || value === `value-${i}-${"x".repeat(i * 7)}`, `record ${i} is whole or absent`);
  }
}

test("cutting the commit log at every byte of its last records loses only the cut records (simulated disk)", async () => {
  const original = new SimFileSystem(createPrng(11));
  const store = await openSimStore(original);
  const log = await writeLog(store, original, STORE_DIRECTORY);
  await store.close();
  let tornTails = 0;
  for (let cut = log.recordOffsets[RECORDS - 3]!; cut <= log.content.length; cut++) {
    const fs = new SimFileSystem(createPrng(cut));
    fs.makeDirectory(STORE_DIRECTORY);
    fs.setContent(`${STORE_DIRECTORY}/MANIFEST`, log.manifest, { durable: true });
    fs.setContent(log.path, log.content.subarray(0, cut), { durable: true });
    const reopened = await openSimStore(fs);
    tornTails += reopened.stats().recovery.tornTails.length;
    checkAfterCut(reopened, log.recordOffsets, log.content.length, cut);
    await reopened.close();
  }
  assert.ok(tornTails > 0, "some cuts fell inside a record and were reported as torn tails");
});

test("cutting the commit log at every byte of its last record loses only that record (real disk)", async () => {
  const directory = temporaryDirectory("cut");
  const fs = new RealFileSystem();
  try {
    const open = (path: string) => Store.open({ directory: path, fs, clock: new RealClock(), jobs: new InlineStorageJobs(fs), fsync: "always" });
    const store = await open(`${directory.path}/original`);
    const log = await writeLog(store, fs, `${directory.path}/original`);
    await store.close();
    for (let cut = log.recordOffsets[RECORDS - 1]!; cut <= log.content.length; cut++) {
      const copy = `${directory.path}/cut-${cut}`;
      fs.makeDirectory(copy);
      for (const [name, bytes] of [["MANIFEST", log.manifest], [log.path.slice(log.path.lastIndexOf("/") + 1), log.content.subarray(0, cut)]] as const) {
        const handle = fs.open(`${copy}/${name}`, "create");
        handle.append(bytes);
        handle.close();
      }
      const reopened = await open(copy);
      checkAfterCut(reopened, log.recordOffsets, log.content.length, cut);
      await reopened.close();
      fs.removeTree(copy);
    }
  } finally {
    directory.remove();
  }
});

async function flipMidLog(fs: FileSystem, directory: string, open: () => Promise<Store>, flip: (path: string, offset: number) => void) {
  const store = await open();
  const log = await writeLog(store, fs, directory);
  await store.close();
  const damaged = log.recordOffsets[RECORDS / 2]! + 12;
  flip(log.path, damaged);
  // A damaged record in the middle of the log must be reported.
  const corruption = await rejectsWithCode(open, "LOOM_CORRUPTION");
  assert.is(corruption.path, log.path);
  assert.ok(corruption.offset! >= log.recordOffsets[RECORDS / 2]! && corruption.offset! <= damaged, `offset ${corruption.offset}`);
}

test("a flipped byte in the middle of the log is reported with file and offset, not skipped (simulated disk)", async () => {
  const fs = new SimFileSystem(createPrng(12));
  await flipMidLog(fs, STORE_DIRECTORY, () => openSimStore(fs), (path, offset) => fs.flipByte(path, offset));
});

test("a flipped byte in the middle of the log is reported with file and offset, not skipped (real disk)", async () => {
  const directory = temporaryDirectory("flip");
  const fs = new RealFileSystem();
  try {
    const open = () => Store.open({ directory: directory.path, fs, clock: new RealClock(), jobs: new InlineStorageJobs(fs), fsync: "always" });
    await flipMidLog(fs, directory.path, open, (path, offset) => {
      const bytes = fs.readFile(path).slice();
      bytes[offset]! ^= 0x40;
      fs.remove(path);
      const handle = fs.open(path, "create");
      handle.append(bytes);
      handle.close();
    });
  } finally {
    directory.remove();
  }
});

interface CrashOutcome {
  readonly crashedDuring: string | undefined;
  readonly acknowledged: number;
}

/** Runs a write workload that loses power at operation `crashAt`, then reopens and checks every acknowledged write. */
async function crashAndRecover(seed: number, crashAt: number, policy: "always" | "batch"): Promise<CrashOutcome & { operations: number }> {
  const prng = createPrng(seed);
  const inner = new SimFileSystem(prng.fork());
  const fs = new CrashingFileSystem(inner, crashAt);
  const clock = new SimClock();
  const overrides = { fsync: policy, memtableBytes: 64 * 1024, compactionTablesMin: 2 } as const;
  const written = new Map<string, string[]>();
  const acknowledged = new Map<string, number>();
  let acknowledgedCount = 0;
  let store: Store | undefined;
  try {
    store = await openSimStore(fs, overrides, clock);
    await writeWorkload(store, prng, clock, written, (key, index) => {
      acknowledged.set(key, Math.max(acknowledged.get(key) ?? -1, index));
      acknowledgedCount++;
    });
    await store.close();
  } catch {
    // Power lost: the store object is dead. Nothing after this point may touch it.
  }
  inner.crash({ tornTail: "random" });
  const reopened = await openSimStore(inner, overrides);
  for (const [key, values] of written) {
    const value = textOf(reopened.get(key)[0]?.value);
    const last = acknowledged.get(key) ?? -1;
    if (value === null) {
      assert.is(last, -1, `seed ${seed} crash ${crashAt}: acknowledged write to ${key} lost`);
      continue;
    }
    const index = values.indexOf(value);
    assert.ok(index >= 0, `seed ${seed} crash ${crashAt}: ${key} holds a value never written`);
    assert.ok(index >= last, `seed ${seed} crash ${crashAt}: ${key} went back from write ${last} to ${index}`);
  }
  checkFileSet(inner);
  await reopened.close();
  return { crashedDuring: fs.crashedDuring, acknowledged: acknowledgedCount, operations: fs.operations };
}

async function writeWorkload(store: Store, prng: Prng, clock: SimClock, written: Map<string, string[]>, onAck: (key: string, index: number) => void) {
  for (let round = 0; round < 60; round++) {
    const group: Promise<void>[] = [];
    for (let i = 1 + prng.nextInt(8); i > 0; i--) {
      const key = `key-${prng.nextInt(50)}`;
      const values = written.get(key) ?? [];
      written.set(key, values);
      const value = `${key}#${values.length}#${"p".repeat(100 + prng.nextInt(500))}`;
      const index = values.push(value) - 1;
      group.push(store.put(key, [{ version: counterVersion(round), value }]).then(() => onAck(key, index)));
    }
    clock.advance(store.config.fsyncBatchWindowMs);
    const results = await Promise.allSettled(group);
    if (results.some((result) => result.status === "rejected")) throw new Error("write failed");
  }
}

/** After recovery the directory holds exactly the manifest, its tables and live logs. */
function checkFileSet(fs: SimFileSystem): void {
  const manifest = readManifest(fs, STORE_DIRECTORY)!;
  const tables = new Set(manifest.tables.map((table) => table.fileNumber));
  for (const name of fs.list(STORE_DIRECTORY)) {
    const { kind, fileNumber } = parseFileName(name);
    if (kind === "table") assert.ok(tables.has(fileNumber), `stray table ${name}`);
    else if (kind === "log") assert.ok(fileNumber >= manifest.logNumberMin, `stale log ${name}`);
    else assert.is(kind, "manifest", `unexpected file ${name}`);
  }
  for (const fileNumber of tables) assert.ok(fs.exists(`${STORE_DIRECTORY}/${String(fileNumber).padStart(6, "0")}.sst`));
}

test("power lost at 1,000 random points never loses an acknowledged write nor leaves a broken file set", async () => {
  const during = new Map<string, number>();
  const prng = createPrng(2026);
  const budgets = new Map<string, number>();
  for (const policy of ["always", "batch"] as const) {
    budgets.set(policy, (await crashAndRecover(1, Number.POSITIVE_INFINITY, policy)).operations);
  }
  for (let i = 0; i < 1000; i++) {
    const policy = i % 2 === 0 ? "always" : "batch";
    const crashAt = 1 + prng.nextInt(budgets.get(policy)!);
    const outcome = await crashAndRecover(1 + (i % 7), crashAt, policy);
    const what = (outcome.crashedDuring ?? "none").replace(/\d+/g, "N");
    during.set(what, (during.get(what) ?? 0) + 1);
  }
  const hit = (pattern: RegExp) => [...during].filter(([what]) => pattern.test(what)).reduce((sum, [, count]) => sum + count, 0);
  assert.ok(hit(/N\.sst/) > 0, "some crashes fell inside a flush or compaction");
  assert.ok(hit(/MANIFEST/) > 0, "some crashes fell inside a manifest update");
  assert.ok(hit(/N\.log/) > 0, "some crashes fell inside a commit-log write");
});

test("a failed fsync rejects its writes, makes the store refuse later writes, and loses nothing acknowledged", async () => {
  const fs = new SimFileSystem(createPrng(13));
  const store = await openSimStore(fs);
  for (let i = 0; i < 10; i++) await store.put(`acked-${i}`, [{ version: counterVersion(i), value: `value-${i}` }]);
  fs.failNextSync(/\.log$/);
  await rejectsWithCode(() => store.put("unacknowledged", [{ version: counterVersion(99), value: "x" }]), "LOOM_IO");
  // A store whose fsync failed acknowledges nothing more.
  await rejectsWithCode(() => store.put("later", [{ version: counterVersion(100), value: "y" }]), "LOOM_IO");
  assert.is(textOf(store.get("acked-3")[0]?.value), "value-3", "reads still work");
  fs.crash({ tornTail: "random" });
  const reopened = await openSimStore(fs);
  for (let i = 0; i < 10; i++) assert.is(textOf(reopened.get(`acked-${i}`)[0]?.value), `value-${i}`);
  assert.equal(reopened.get("later"), []);
  await reopened.close();
});

/** Runs the kill_writer child until `acknowledgements` writes are acknowledged, then SIGKILLs it. */
function killWriterAfter(directory: string, policy: string, acknowledgements: number): Promise<number[]> {
  const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  const fixture = fileURLToPath(new URL(`./fixtures/kill_writer${extension}`, import.meta.url));
  const isDeno = extension === ".ts";
  const args = isDeno ? ["run", "-A", fixture, directory, policy] : [fixture, directory, policy];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  const acknowledged: number[] = [];
  let pending = "";
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (chunk: Uint8Array) => {
      pending += new TextDecoder().decode(chunk);
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) if (/^\d+$/.test(line)) acknowledged.push(Number(line));
      if (acknowledged.length >= acknowledgements) child.kill("SIGKILL");
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL") resolve(acknowledged);
      else reject(new Error(`writer exited with ${code ?? signal} before it was killed`));
    });
  });
}

test("a writer process killed at random points on the real disk loses no acknowledged write", async () => {
  const prng = createPrng(77);
  for (const policy of ["always", "batch", "never"]) {
    for (let round = 0; round < 2; round++) {
      const directory = temporaryDirectory(`kill-${policy}`);
      try {
        const acknowledged = await killWriterAfter(directory.path, policy, 200 + prng.nextInt(3000));
        const fs = new RealFileSystem();
        const store = await Store.open({ directory: directory.path, fs, clock: new RealClock(), jobs: new InlineStorageJobs(fs) });
        const lastAcknowledged = new Map<number, number>();
        for (const n of acknowledged) lastAcknowledged.set(n % 500, Math.max(lastAcknowledged.get(n % 500) ?? -1, n));
        for (const [slot, n] of lastAcknowledged) {
          const value = textOf(store.get(`key-${slot}`)[0]?.value);
          assert.ok(value !== null, `${policy}: acknowledged write ${n} to key-${slot} lost`);
          const recovered = Number(value.split(":")[0]);
          assert.is(recovered % 500, slot, `${policy}: key-${slot} holds a value never written to it`);
          assert.ok(recovered >= n, `${policy}: key-${slot} went back from acknowledged write ${n} to ${recovered}`);
          assert.is(value, `${recovered}:${"p".repeat(recovered % 300)}`);
        }
        await store.close();
      } finally {
        directory.remove();
      }
    }
  }
});

test.run();
