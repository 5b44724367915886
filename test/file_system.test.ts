/**
 * One conformance suite for the FileSystem interface, run against the real disk and against the
 * simulator: everything file_system.ts promises must hold identically on both.
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as nodePath from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type FileSystem, joinPath } from "../src/io/file_system.ts";
import { createPrng } from "../src/io/prng.ts";
import { RealFileSystem } from "../src/io/real_file_system.ts";
import { SimFileSystem } from "../src/io/sim_file_system.ts";
import { rejectsWithCode } from "./support/assertions.ts";

interface FileSystemFixture {
  fs: FileSystem;
  /** An empty, existing directory the test may use. */
  root: string;
  cleanup(): void;
}

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

function text(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

/** Asserts that `action` throws an IoError (LOOM_IO) naming `path`. */
async function assertIoError(action: () => unknown, path: string): Promise<void> {
  assert.is((await rejectsWithCode(action, "LOOM_IO")).path, path);
}

/** Asserts that `action` throws a LockedError (LOOM_LOCKED, outcome not-applied) naming `path`. */
async function assertLockedError(action: () => unknown, path: string): Promise<void> {
  const error = await rejectsWithCode(action, "LOOM_LOCKED");
  assert.is(error.outcome, "not-applied");
  assert.is(error.path, path);
}

function fileSystemConformance(name: string, createFixture: () => FileSystemFixture): void {
  const test = suite(`FileSystem conformance: ${name}`);
  const it = (title: string, body: (fs: FileSystem, root: string) => void | Promise<void>): void => {
    test(title, async () => {
      const fixture = createFixture();
      try {
        await body(fixture.fs, fixture.root);
      } finally {
        fixture.cleanup();
      }
    });
  };

  it("a created file reads back what was appended, and size counts every append", (fs, root) => {
    const path = joinPath(root, "a.log");
    const handle = fs.open(path, "create");
    assert.is(handle.path, path);
    assert.is(handle.size(), 0);
    handle.append(text("hello "));
    handle.append(text("world"));
    assert.is(handle.size(), 11);
    handle.sync();
    handle.close();
    assert.equal(fs.readFile(path), text("hello world"));
    const reader = fs.open(path, "read");
    const buffer = new Uint8Array(5);
    assert.is(reader.readAt(buffer, 6), 5);
    assert.equal(buffer, text("world"));
    assert.is(reader.size(), 11);
    reader.close();
  });

  it("readAt returns a short count at end of file and zero past it", (fs, root) => {
    const path = joinPath(root, "short");
    const writer = fs.open(path, "create");
    writer.append(bytes(1, 2, 3, 4));
    writer.close();
    const reader = fs.open(path, "read");
    const buffer = new Uint8Array(8).fill(9);
    assert.is(reader.readAt(buffer, 2), 2);
    assert.equal(buffer, bytes(3, 4, 9, 9, 9, 9, 9, 9));
    assert.is(reader.readAt(buffer, 4), 0);
    assert.is(reader.readAt(buffer, 100), 0);
    reader.close();
  });

  it("an append handle creates a missing file, and appends after existing content", (fs, root) => {
    const path = joinPath(root, "append");
    const first = fs.open(path, "append");
    first.append(bytes(1, 2));
    first.close();
    const second = fs.open(path, "append");
    assert.is(second.size(), 2);
    second.append(bytes(3));
    const buffer = new Uint8Array(3);
    assert.is(second.readAt(buffer, 0), 3);
    assert.equal(buffer, bytes(1, 2, 3));
    second.close();
    assert.equal(fs.readFile(path), bytes(1, 2, 3));
  });

  it("opening a missing file for reading fails with an IoError naming the path", async (fs, root) => {
    await assertIoError(() => fs.open(joinPath(root, "missing"), "read"), joinPath(root, "missing"));
  });

  it("creating a file that exists fails and leaves its content alone", async (fs, root) => {
    const path = joinPath(root, "exists");
    const handle = fs.open(path, "create");
    handle.append(bytes(7));
    handle.close();
    await assertIoError(() => fs.open(path, "create"), path);
    assert.equal(fs.readFile(path), bytes(7));
  });

  it("creating a file in a missing directory fails", async (fs, root) => {
    const path = joinPath(root, "no-such-directory", "file");
    await assertIoError(() => fs.open(path, "create"), path);
    await assertIoError(() => fs.open(path, "append"), path);
  });

  it("a read handle refuses appends and truncates, a create handle refuses reads", async (fs, root) => {
    const path = joinPath(root, "modes");
    const writer = fs.open(path, "create");
    writer.append(bytes(1, 2, 3));
    await assertIoError(() => writer.readAt(new Uint8Array(1), 0), path);
    writer.close();
    const reader = fs.open(path, "read");
    await assertIoError(() => reader.append(bytes(4)), path);
    await assertIoError(() => reader.truncate(1), path);
    reader.close();
    assert.equal(fs.readFile(path), bytes(1, 2, 3));
  });

  it("truncate cuts the file, later appends continue at the new end, and growing pads with zeros", (fs, root) => {
    const path = joinPath(root, "truncate");
    const handle = fs.open(path, "append");
    handle.append(bytes(1, 2, 3, 4, 5));
    handle.truncate(2);
    assert.is(handle.size(), 2);
    handle.append(bytes(9));
    assert.equal(fs.readFile(path), bytes(1, 2, 9));
    handle.truncate(5);
    assert.equal(fs.readFile(path), bytes(1, 2, 9, 0, 0));
    handle.close();
  });

  it("a closed handle refuses every operation, and closing twice is harmless", async (fs, root) => {
    const path = joinPath(root, "closed");
    const handle = fs.open(path, "append");
    handle.close();
    handle.close();
    await assertIoError(() => handle.append(bytes(1)), path);
    await assertIoError(() => handle.readAt(new Uint8Array(1), 0), path);
    await assertIoError(() => handle.size(), path);
    await assertIoError(() => handle.sync(), path);
    await assertIoError(() => handle.truncate(0), path);
  });

  it("the file keeps its own copy of appended bytes, and readFile returns a copy", (fs, root) => {
    const path = joinPath(root, "copies");
    const data = bytes(1, 2, 3);
    const handle = fs.open(path, "create");
    handle.append(data);
    handle.close();
    data[0] = 99;
    const read = fs.readFile(path);
    assert.equal(read, bytes(1, 2, 3));
    read[1] = 99;
    assert.equal(fs.readFile(path), bytes(1, 2, 3));
  });

  it("readFile of a missing file fails with an IoError", async (fs, root) => {
    await assertIoError(() => fs.readFile(joinPath(root, "nothing")), joinPath(root, "nothing"));
  });

  it("rename replaces an existing target with the source in one step", (fs, root) => {
    const from = joinPath(root, "CURRENT.tmp");
    const to = joinPath(root, "CURRENT");
    for (const [path, content] of [[to, "old"], [from, "new"]] as const) {
      const handle = fs.open(path, "create");
      handle.append(text(content));
      handle.sync();
      handle.close();
    }
    fs.rename(from, to);
    fs.syncDirectory(root);
    assert.equal(fs.readFile(to), text("new"));
    assert.not.ok(fs.exists(from));
    assert.equal(fs.list(root), ["CURRENT"]);
  });

  it("rename moves a file into another directory", (fs, root) => {
    fs.makeDirectory(joinPath(root, "archive"));
    const handle = fs.open(joinPath(root, "f"), "create");
    handle.append(bytes(5));
    handle.close();
    fs.rename(joinPath(root, "f"), joinPath(root, "archive", "f"));
    assert.equal(fs.readFile(joinPath(root, "archive", "f")), bytes(5));
    assert.equal(fs.list(root), ["archive"]);
  });

  it("renaming a missing file or into a missing directory fails with an IoError naming the source", async (fs, root) => {
    const missing = joinPath(root, "missing");
    await assertIoError(() => fs.rename(missing, joinPath(root, "b")), missing);
    const present = joinPath(root, "present");
    fs.open(present, "create").close();
    await assertIoError(() => fs.rename(present, joinPath(root, "nowhere", "b")), present);
    assert.ok(fs.exists(present));
  });

  it("remove deletes a file, and removing a missing file is a no-op", (fs, root) => {
    const path = joinPath(root, "gone");
    fs.open(path, "create").close();
    fs.remove(path);
    assert.not.ok(fs.exists(path));
    fs.remove(path);
    fs.remove(joinPath(root, "missing-directory", "missing"));
  });

  it("remove refuses a directory", async (fs, root) => {
    const directory = joinPath(root, "directory");
    fs.makeDirectory(directory);
    await assertIoError(() => fs.remove(directory), directory);
    assert.ok(fs.exists(directory));
  });

  it("list returns sorted names of files and subdirectories, not paths and not grandchildren", (fs, root) => {
    for (const name of ["b.sst", "a.log", "C", "10", "9"]) fs.open(joinPath(root, name), "create").close();
    fs.makeDirectory(joinPath(root, "sub", "deeper"));
    fs.open(joinPath(root, "sub", "inner"), "create").close();
    assert.equal(fs.list(root), ["10", "9", "C", "a.log", "b.sst", "sub"]);
    assert.equal(fs.list(joinPath(root, "sub")), ["deeper", "inner"]);
    assert.equal(fs.list(joinPath(root, "sub", "deeper")), []);
  });

  it("list of a missing directory or of a file fails with an IoError", async (fs, root) => {
    await assertIoError(() => fs.list(joinPath(root, "missing")), joinPath(root, "missing"));
    fs.open(joinPath(root, "file"), "create").close();
    await assertIoError(() => fs.list(joinPath(root, "file")), joinPath(root, "file"));
  });

  it("exists is true for files and directories and false for missing paths", (fs, root) => {
    fs.open(joinPath(root, "file"), "create").close();
    fs.makeDirectory(joinPath(root, "directory"));
    assert.ok(fs.exists(joinPath(root, "file")));
    assert.ok(fs.exists(joinPath(root, "directory")));
    assert.ok(fs.exists(root));
    assert.not.ok(fs.exists(joinPath(root, "missing")));
    assert.not.ok(fs.exists(joinPath(root, "missing", "deeper")));
  });

  it("makeDirectory creates missing parents and accepts an existing directory", (fs, root) => {
    const deep = joinPath(root, "a", "b", "c");
    fs.makeDirectory(deep);
    fs.makeDirectory(deep);
    assert.equal(fs.list(joinPath(root, "a")), ["b"]);
    assert.equal(fs.list(deep), []);
  });

  it("makeDirectory fails where a file is in the way", async (fs, root) => {
    const file = joinPath(root, "file");
    fs.open(file, "create").close();
    await assertIoError(() => fs.makeDirectory(file), file);
    await assertIoError(() => fs.makeDirectory(joinPath(file, "below")), joinPath(file, "below"));
  });

  it("removeTree removes a directory with everything below it, and a missing one is a no-op", (fs, root) => {
    const tree = joinPath(root, "tree");
    fs.makeDirectory(joinPath(tree, "nested"));
    fs.open(joinPath(tree, "nested", "file"), "create").close();
    fs.open(joinPath(tree, "file"), "create").close();
    fs.open(joinPath(root, "sibling"), "create").close();
    fs.removeTree(tree);
    assert.not.ok(fs.exists(tree));
    assert.equal(fs.list(root), ["sibling"]);
    fs.removeTree(tree);
  });

  it("syncDirectory succeeds on a directory and fails on a missing one", async (fs, root) => {
    fs.open(joinPath(root, "file"), "create").close();
    fs.syncDirectory(root);
    await assertIoError(() => fs.syncDirectory(joinPath(root, "missing")), joinPath(root, "missing"));
  });

  it("a lock is exclusive until released, and can be taken again after", async (fs, root) => {
    const path = joinPath(root, "LOCK");
    const lock = fs.lock(path);
    assert.is(lock.path, path);
    await assertLockedError(() => fs.lock(path), path);
    await assertLockedError(() => fs.lock(path), path);
    lock.release();
    fs.lock(path).release();
  });

  it("release is idempotent, and locks on different paths are independent", async (fs, root) => {
    fs.makeDirectory(joinPath(root, "sub"));
    const first = fs.lock(joinPath(root, "LOCK"));
    const second = fs.lock(joinPath(root, "sub", "LOCK"));
    first.release();
    first.release();
    await assertLockedError(() => fs.lock(joinPath(root, "sub", "LOCK")), joinPath(root, "sub", "LOCK"));
    const again = fs.lock(joinPath(root, "LOCK"));
    again.release();
    second.release();
  });

  it("locking in a missing directory fails with an IoError naming the path", async (fs, root) => {
    await assertIoError(() => fs.lock(joinPath(root, "missing", "LOCK")), joinPath(root, "missing", "LOCK"));
  });

  it("breakLock frees a lock whose holder is gone, and that holder's late release leaves the next holder's lock alone", async (fs, root) => {
    const path = joinPath(root, "LOCK");
    const gone = fs.lock(path);
    fs.breakLock(path);
    const next = fs.lock(path);
    gone.release();
    await assertLockedError(() => fs.lock(path), path);
    next.release();
    fs.breakLock(path); // nothing holds it: a no-op
    fs.lock(path).release();
  });

  test.run();
}

fileSystemConformance("real disk", () => {
  const root = nodeFs.mkdtempSync(nodePath.join(os.tmpdir(), "loomkv-fs-"));
  return { fs: new RealFileSystem(), root, cleanup: () => nodeFs.rmSync(root, { recursive: true, force: true }) };
});

fileSystemConformance("simulator", () => {
  const fs = new SimFileSystem(createPrng(1));
  fs.makeDirectory("/sim/root");
  return { fs, root: "/sim/root", cleanup: () => {} };
});
