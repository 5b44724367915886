/**
 * Lock files on the real disk (src/io/real_file_lock.ts): what a lock file says, and how a lock
 * left by a holder that is gone (dead, from another boot, a reused pid, a torn file) is taken over
 * at once while one naming a live process is not. Processes holding locks for real (a child
 * killed with SIGKILL) are in cluster_lock.test.ts.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { RealFileSystem } from "../src/io/real_file_system.ts";
import { temporaryDirectory } from "./support/store_harness.ts";
import { rejectsWithCode } from "./support/assertions.ts";

/** Above PID_MAX_LIMIT (2^22) on 64-bit Linux, and above macOS's 99999: no process has it. */
const DEAD_PID = 4_194_305;
const linux = existsSync("/proc/self/stat");

async function withLockPath(body: (path: string, fs: RealFileSystem) => void | Promise<void>): Promise<void> {
  const directory = temporaryDirectory("lock");
  try {
    await body(`${directory.path}/LOCK`, new RealFileSystem());
  } finally {
    directory.remove();
  }
}

function lockFile(fields: Record<string, unknown>): string {
  return `${JSON.stringify({ format: 1, token: "left-behind", ...fields })}\n`;
}

/** Takes the lock at `path` and checks the file now names this process. */
function takesOver(fs: RealFileSystem, path: string): void {
  const lock = fs.lock(path);
  assert.is(JSON.parse(readFileSync(path, "utf8")).pid, process.pid);
  lock.release();
}

test("the lock file names this process while held and is gone after release", async () => {
  await withLockPath((path, fs) => {
    const lock = fs.lock(path);
    const holder = JSON.parse(readFileSync(path, "utf8"));
    assert.is(holder.pid, process.pid);
    if (linux) assert.type(holder.start, "string");
    lock.release();
    assert.not.ok(existsSync(path));
  });
});

test("a lock held in this process is refused naming this pid", async () => {
  await withLockPath(async (path, fs) => {
    const lock = fs.lock(path);
    try {
      // A second lock in this process must be refused.
      const error = await rejectsWithCode(() => fs.lock(path), "LOOM_LOCKED");
      assert.is(error.pid, process.pid);
      assert.match(error.message, `is held by process ${process.pid} (this process)`);
    } finally {
      lock.release();
    }
  });
});

test("a lock file naming a live process is held: LockedError names its pid, and breakLock refuses it", async () => {
  await withLockPath(async (path, fs) => {
    const live = process.ppid; // the test runner's parent: alive while this test runs
    writeFileSync(path, lockFile({ pid: live }));
    for (const action of [() => fs.lock(path), () => fs.breakLock(path)]) {
      // A live holder's lock must not be taken.
      const error = await rejectsWithCode(action, "LOOM_LOCKED");
      assert.is(error.pid, live);
      assert.match(error.message, `is held by process ${live}`);
    }
    assert.is(readFileSync(path, "utf8"), lockFile({ pid: live }), "the live holder's file is untouched");
  });
});

test("a lock file left by a dead process is taken over at once", async () => {
  await withLockPath((path, fs) => {
    writeFileSync(path, lockFile({ pid: DEAD_PID }));
    takesOver(fs, path);
  });
});

test("damaged lock files (empty, cut short, not a lock file, a pid that names a process group) are taken over", async () => {
  await withLockPath((path, fs) => {
    for (const content of ["", lockFile({ pid: DEAD_PID }).slice(0, 20), "garbage\n", lockFile({ pid: 0 }), lockFile({ pid: -1 })]) {
      writeFileSync(path, content);
      takesOver(fs, path);
    }
  });
});

test("on Linux, a live pid with another start time (a reused pid) or another boot id holds no lock", async () => {
  if (!linux) return;
  await withLockPath(async (path, fs) => {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const ownStart = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!;
    for (const stale of [
      { pid: process.pid, start: `${ownStart}1` }, // this pid, held by an earlier process
      { pid: process.ppid, start: "1" }, // a live process that is not the one that locked
      { pid: process.ppid, boot: "a-boot-before-this-one" },
    ]) {
      writeFileSync(path, lockFile(stale));
      takesOver(fs, path);
    }
    writeFileSync(path, lockFile({ pid: process.pid, start: ownStart }));
    assert.is((await rejectsWithCode(() => fs.lock(path), "LOOM_LOCKED")).pid, process.pid);
  });
});

test.run();
