/**
 * Disk faults on purpose: a FileSystem that forwards to another one (the real disk or the
 * simulated one) until a fault is switched on, then fails the operations that fault breaks, with
 * the IoError a real disk would cause. It is fault injection around the real thing, not a mock:
 * everything that does not fail reaches the wrapped file system unchanged.
 *
 * - `"fsync"`: every `sync()` and `syncDirectory()` fails (EIO), as after a disk error. A store
 *   whose log sync fails rejects the writes of that group and refuses every later write.
 * - `"full"`: every append, and every creation of a file, fails (ENOSPC), as on a full disk.
 *
 * Faults apply to handles opened before the switch too. `setFault(null)` clears it; a store that
 * saw a failure stays failed until it is reopened (its files' tails are unknown).
 */
import { IoError } from "../util/errors.ts";
import type { FileHandle, FileLock, FileSystem, OpenMode } from "./file_system.ts";

export type DiskFault = "fsync" | "full";

export const diskFaults: readonly DiskFault[] = ["fsync", "full"];

export class FaultyFileSystem implements FileSystem {
  readonly #inner: FileSystem;
  #fault: DiskFault | null = null;
  /** Operations failed on purpose since the start. */
  injected = 0;

  constructor(inner: FileSystem) {
    this.#inner = inner;
  }

  get fault(): DiskFault | null {
    return this.#fault;
  }

  setFault(fault: DiskFault | null): void {
    this.#fault = fault;
  }

  /** Throws the injected failure for `action` on `path` when the current fault breaks it. */
  check(action: "sync" | "append" | "create", path: string): void {
    const fault = this.#fault;
    if (fault === "fsync" && action === "sync") {
      this.injected++;
      throw new IoError(`sync failed: EIO: i/o error (injected disk fault "fsync")`, path);
    }
    if (fault === "full" && (action === "append" || action === "create")) {
      this.injected++;
      throw new IoError(`${action} failed: ENOSPC: no space left on device (injected disk fault "full")`, path);
    }
  }

  open(path: string, mode: OpenMode): FileHandle {
    if (mode !== "read" && !this.#inner.exists(path)) this.check("create", path);
    return new FaultyFileHandle(this, this.#inner.open(path, mode));
  }

  readFile(path: string): Uint8Array {
    return this.#inner.readFile(path);
  }

  exists(path: string): boolean {
    return this.#inner.exists(path);
  }

  list(directory: string): string[] {
    return this.#inner.list(directory);
  }

  makeDirectory(directory: string): void {
    this.#inner.makeDirectory(directory);
  }

  rename(from: string, to: string): void {
    this.#inner.rename(from, to);
  }

  remove(path: string): void {
    this.#inner.remove(path);
  }

  removeTree(directory: string): void {
    this.#inner.removeTree(directory);
  }

  syncDirectory(directory: string): void {
    this.check("sync", directory);
    this.#inner.syncDirectory(directory);
  }

  lock(path: string): FileLock {
    return this.#inner.lock(path);
  }

  breakLock(path: string): void {
    this.#inner.breakLock(path);
  }
}

class FaultyFileHandle implements FileHandle {
  readonly #fs: FaultyFileSystem;
  readonly #inner: FileHandle;

  constructor(fs: FaultyFileSystem, inner: FileHandle) {
    this.#fs = fs;
    this.#inner = inner;
  }

  get path(): string {
    return this.#inner.path;
  }

  append(data: Uint8Array): void {
    this.#fs.check("append", this.#inner.path);
    this.#inner.append(data);
  }

  readAt(buffer: Uint8Array, position: number): number {
    return this.#inner.readAt(buffer, position);
  }

  size(): number {
    return this.#inner.size();
  }

  sync(): void {
    this.#fs.check("sync", this.#inner.path);
    this.#inner.sync();
  }

  truncate(length: number): void {
    this.#inner.truncate(length);
  }

  close(): void {
    this.#inner.close();
  }
}
