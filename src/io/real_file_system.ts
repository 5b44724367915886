/**
 * The FileSystem interface over node:fs (works on Node and Deno). Synchronous by contract: see
 * file_system.ts. Durability: `sync()` is fdatasync, `syncDirectory()` fsyncs the directory fd.
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import { IoError } from "../util/errors.ts";
import { type FileHandle, type FileLock, type FileSystem, type OpenMode } from "./file_system.ts";
import { breakLock, takeLock } from "./real_file_lock.ts";

function ioError(action: string, path: string, cause: unknown): IoError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new IoError(`${action} failed: ${detail}`, path, { cause });
}

class RealFileHandle implements FileHandle {
  readonly path: string;
  readonly #writable: boolean;
  #fd: number;
  #size: number;

  constructor(path: string, fd: number, writable: boolean) {
    this.path = path;
    this.#fd = fd;
    this.#writable = writable;
    this.#size = fs.fstatSync(fd).size;
  }

  #checkOpen(action: string): void {
    if (this.#fd < 0) throw new IoError(`${action} failed: file is closed`, this.path);
  }

  append(data: Uint8Array): void {
    this.#checkOpen("append");
    if (!this.#writable) throw new IoError("append failed: file is open for reading only", this.path);
    let written = 0;
    try {
      while (written < data.length) {
        written += fs.writeSync(this.#fd, data, written, data.length - written, this.#size + written);
      }
    } catch (cause) {
      throw ioError("append", this.path, cause);
    } finally {
      this.#size += written;
    }
  }

  readAt(buffer: Uint8Array, position: number): number {
    this.#checkOpen("read");
    let total = 0;
    try {
      while (total < buffer.length) {
        const count = fs.readSync(this.#fd, buffer, total, buffer.length - total, position + total);
        if (count === 0) break;
        total += count;
      }
    } catch (cause) {
      throw ioError("read", this.path, cause);
    }
    return total;
  }

  size(): number {
    this.#checkOpen("size");
    return this.#size;
  }

  sync(): void {
    this.#checkOpen("sync");
    try {
      fs.fdatasyncSync(this.#fd);
    } catch (cause) {
      throw ioError("sync", this.path, cause);
    }
  }

  truncate(length: number): void {
    this.#checkOpen("truncate");
    try {
      fs.ftruncateSync(this.#fd, length);
      this.#size = length;
    } catch (cause) {
      throw ioError("truncate", this.path, cause);
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    try {
      fs.closeSync(fd);
    } catch (cause) {
      throw ioError("close", this.path, cause);
    }
  }
}

const FLAGS: Record<OpenMode, string> = { read: "r", create: "wx", append: "a+" };

export class RealFileSystem implements FileSystem {
  open(path: string, mode: OpenMode): FileHandle {
    try {
      // "a+" appends through positional writes at the tracked size, which Linux ignores for
      // O_APPEND (always appends): both agree because the handle is the only writer.
      const fd = fs.openSync(path, FLAGS[mode]);
      return new RealFileHandle(path, fd, mode !== "read");
    } catch (cause) {
      throw ioError(`open (${mode})`, path, cause);
    }
  }

  readFile(path: string): Uint8Array {
    try {
      const buffer = fs.readFileSync(path);
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } catch (cause) {
      throw ioError("read file", path, cause);
    }
  }

  exists(path: string): boolean {
    return fs.existsSync(path);
  }

  list(directory: string): string[] {
    try {
      return fs.readdirSync(directory).sort();
    } catch (cause) {
      throw ioError("list", directory, cause);
    }
  }

  makeDirectory(directory: string): void {
    // One level at a time: mkdirSync({ recursive: true }) spins forever where a parent refuses a
    // new entry with ENOENT (under /proc, on Node 20).
    const missing: string[] = [];
    for (let path = directory; !fs.existsSync(path); path = dirname(path)) {
      missing.push(path);
      if (dirname(path) === path) break;
    }
    try {
      for (const path of missing.reverse()) {
        try {
          fs.mkdirSync(path);
        } catch (error) {
          if ((error as { code?: unknown }).code !== "EEXIST" || !fs.statSync(path).isDirectory()) throw error;
        }
      }
      if (!fs.statSync(directory).isDirectory()) throw new Error(`not a directory: ${directory}`);
    } catch (cause) {
      throw ioError("make directory", directory, cause);
    }
  }

  rename(from: string, to: string): void {
    try {
      fs.renameSync(from, to);
    } catch (cause) {
      throw ioError(`rename to ${to}`, from, cause);
    }
  }

  remove(path: string): void {
    try {
      fs.rmSync(path, { force: true });
    } catch (cause) {
      throw ioError("remove", path, cause);
    }
  }

  removeTree(directory: string): void {
    try {
      fs.rmSync(directory, { recursive: true, force: true });
    } catch (cause) {
      throw ioError("remove tree", directory, cause);
    }
  }

  syncDirectory(directory: string): void {
    let fd = -1;
    try {
      fd = fs.openSync(directory, "r");
      fs.fsyncSync(fd);
    } catch (cause) {
      throw ioError("sync directory", directory, cause);
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  }

  /** A lock file naming this process (real_file_lock.ts): Node and Deno processes exclude each other. */
  lock(path: string): FileLock {
    return takeLock(path);
  }

  breakLock(path: string): void {
    breakLock(path);
  }
}
