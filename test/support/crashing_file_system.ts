/**
 * A FileSystem wrapper for crash tests: forwards to an inner file system until a chosen operation
 * number, then "loses power": that operation and every later one throw, as if the process died
 * there. The test then crashes the inner simulated file system and reopens the store on it.
 */
import type { FileHandle, FileLock, FileSystem, OpenMode } from "../../src/io/file_system.ts";
import { IoError } from "../../src/util/errors.ts";

export class PowerLoss extends IoError {}

export class CrashingFileSystem implements FileSystem {
  readonly #inner: FileSystem;
  operations = 0;
  crashAt: number;
  /** What the store was doing when power was lost ("append 000005.sst", "rename MANIFEST.tmp", …). */
  crashedDuring: string | undefined;

  constructor(inner: FileSystem, crashAt = Number.POSITIVE_INFINITY) {
    this.#inner = inner;
    this.crashAt = crashAt;
  }

  tick(action: string, path: string): void {
    if (this.crashedDuring !== undefined) throw new PowerLoss(`${action} failed: power lost`, path);
    this.operations++;
    if (this.operations >= this.crashAt) {
      this.crashedDuring = `${action} ${path.slice(path.lastIndexOf("/") + 1)}`;
      throw new PowerLoss(`${action} failed: power lost`, path);
    }
  }

  open(path: string, mode: OpenMode): FileHandle {
    this.tick(`open-${mode}`, path);
    const handle = this.#inner.open(path, mode);
    const tick = (action: string) => this.tick(action, path);
    return {
      path,
      append(data) { tick("append"); handle.append(data); },
      readAt(buffer, position) { tick("read"); return handle.readAt(buffer, position); },
      size() { return handle.size(); },
      sync() { tick("sync"); handle.sync(); },
      truncate(length) { tick("truncate"); handle.truncate(length); },
      close() { handle.close(); },
    };
  }
  readFile(path: string): Uint8Array { this.tick("read-file", path); return this.#inner.readFile(path); }
  exists(path: string): boolean { return this.#inner.exists(path); }
  list(directory: string): string[] { return this.#inner.list(directory); }
  makeDirectory(directory: string): void { this.tick("mkdir", directory); this.#inner.makeDirectory(directory); }
  rename(from: string, to: string): void { this.tick("rename", from); this.#inner.rename(from, to); }
  remove(path: string): void { this.tick("remove", path); this.#inner.remove(path); }
  removeTree(directory: string): void { this.tick("remove-tree", directory); this.#inner.removeTree(directory); }
  syncDirectory(directory: string): void { this.tick("sync-directory", directory); this.#inner.syncDirectory(directory); }
  // Locks live in memory in the simulator (no disk operation to lose power in): forwarded as they are.
  lock(path: string): FileLock { return this.#inner.lock(path); }
  breakLock(path: string): void { this.#inner.breakLock(path); }
}
