/**
 * A FileSystem that forwards every operation to another one after asking a gate, which may throw
 * to refuse it. One forwarding layer for every wrapper that fails operations on purpose: disk
 * faults (faulty_file_system.ts) and the simulator's dead node lives (src/sim/node_incarnation.ts).
 */
import type { FileHandle, FileLock, FileSystem, OpenMode } from "./file_system.ts";

/** What a gate is asked about. `create`: opening a path that does not exist yet for writing. */
export type FileOperation = "create" | "open" | "append" | "read" | "sync" | "truncate" | "metadata" | "lock";

/** Throws to refuse `operation` on `path`; returns to let it through. */
export type FileGate = (operation: FileOperation, path: string) => void;

export class GatedFileSystem implements FileSystem {
  readonly #inner: FileSystem;
  readonly #gate: FileGate;

  constructor(inner: FileSystem, gate: FileGate) {
    this.#inner = inner;
    this.#gate = gate;
  }

  open(path: string, mode: OpenMode): FileHandle {
    this.#gate(mode !== "read" && !this.#inner.exists(path) ? "create" : "open", path);
    return new GatedFileHandle(this.#inner.open(path, mode), this.#gate);
  }

  readFile(path: string): Uint8Array {
    this.#gate("read", path);
    return this.#inner.readFile(path);
  }

  exists(path: string): boolean {
    this.#gate("metadata", path);
    return this.#inner.exists(path);
  }

  list(directory: string): string[] {
    this.#gate("metadata", directory);
    return this.#inner.list(directory);
  }

  makeDirectory(directory: string): void {
    this.#gate("metadata", directory);
    this.#inner.makeDirectory(directory);
  }

  rename(from: string, to: string): void {
    this.#gate("metadata", from);
    this.#inner.rename(from, to);
  }

  remove(path: string): void {
    this.#gate("metadata", path);
    this.#inner.remove(path);
  }

  removeTree(directory: string): void {
    this.#gate("metadata", directory);
    this.#inner.removeTree(directory);
  }

  syncDirectory(directory: string): void {
    this.#gate("sync", directory);
    this.#inner.syncDirectory(directory);
  }

  lock(path: string): FileLock {
    this.#gate("lock", path);
    return this.#inner.lock(path);
  }

  breakLock(path: string): void {
    this.#inner.breakLock(path);
  }
}

class GatedFileHandle implements FileHandle {
  readonly #inner: FileHandle;
  readonly #gate: FileGate;

  constructor(inner: FileHandle, gate: FileGate) {
    this.#inner = inner;
    this.#gate = gate;
  }

  get path(): string {
    return this.#inner.path;
  }

  append(data: Uint8Array): void {
    this.#gate("append", this.#inner.path);
    this.#inner.append(data);
  }

  readAt(buffer: Uint8Array, position: number): number {
    this.#gate("read", this.#inner.path);
    return this.#inner.readAt(buffer, position);
  }

  size(): number {
    return this.#inner.size();
  }

  sync(): void {
    this.#gate("sync", this.#inner.path);
    this.#inner.sync();
  }

  truncate(length: number): void {
    this.#gate("truncate", this.#inner.path);
    this.#inner.truncate(length);
  }

  close(): void {
    this.#inner.close();
  }
}
