/**
 * The file-system edge. Storage code reaches the disk only through this interface, so that the
 * same code runs on the real disk (real_file_system.ts) and on the simulated one
 * (sim_file_system.ts), which can crash, tear writes, flip bytes and fail fsyncs.
 *
 * The interface is synchronous, like LevelDB's Env: a node worker owns its store and blocks on its
 * own IO; heavy IO (flush, compaction) runs in the piscina pool.
 *
 * Durability contract (what the simulator enforces and the real disk provides):
 * - bytes appended to a file survive a crash only after `sync()` on that handle returns;
 * - a file's existence, a rename and a removal survive a crash only after `syncDirectory()` of
 *   the parent directory returns;
 * - a crash may keep any prefix of the bytes appended since the last `sync()` (a torn write).
 *
 * Paths are absolute or relative POSIX strings joined with "/". All errors are IoError, except
 * LockedError from `lock()` and `breakLock()`.
 */
import { LockedError } from "../util/errors.ts";

export type OpenMode =
  /** Read only; the file must exist. */
  | "read"
  /** Create a new file (it must not exist) for appending. */
  | "create"
  /** Append to an existing file, or create it. */
  | "append";

export interface FileHandle {
  readonly path: string;
  /** Appends all of `data` at the end of the file. REQUIRES: opened with "create" or "append". */
  append(data: Uint8Array): void;
  /**
   * Reads up to `buffer.length` bytes at `position` into `buffer`; returns the count read
   * (less than requested only at end of file).
   */
  readAt(buffer: Uint8Array, position: number): number;
  /** Current size in bytes, including unsynced appends. */
  size(): number;
  /** Makes every byte appended so far durable (fdatasync). */
  sync(): void;
  /** Cuts the file to `length` bytes. REQUIRES: writable handle. */
  truncate(length: number): void;
  close(): void;
}

/**
 * An exclusive lock taken with `FileSystem.lock()`. It lasts until `release()`, or until its
 * holder dies (a killed process on the real disk, a simulated crash): the next `lock()` then
 * takes it over at once.
 */
export interface FileLock {
  readonly path: string;
  /**
   * Gives the lock up. Idempotent. A lock that was broken (`breakLock`) and taken by someone
   * else since is left to its new holder.
   */
  release(): void;
}

export interface FileSystem {
  open(path: string, mode: OpenMode): FileHandle;
  /** The whole content of a file. */
  readFile(path: string): Uint8Array;
  exists(path: string): boolean;
  /** Names (not paths) of the entries in a directory, sorted. */
  list(directory: string): string[];
  /** Creates a directory and its parents; no error if it exists. */
  makeDirectory(directory: string): void;
  /** Atomically replaces `to` with `from` (POSIX rename). */
  rename(from: string, to: string): void;
  /** Removes a file; no error if it does not exist. */
  remove(path: string): void;
  /** Removes a directory and everything below it; no error if it does not exist. */
  removeTree(directory: string): void;
  /** Makes creations, renames and removals in `directory` durable (fsync of the directory). */
  syncDirectory(directory: string): void;
  /**
   * Takes the exclusive lock `path` (a file in an existing directory, such as `<store>/LOCK`).
   * Not re-entrant: while a holder lives, in another process or in this one (another store or
   * cluster here), throws LockedError naming `path` and, where known, the holder's process id. A
   * lock whose holder died is taken over at once. IoError when the directory refuses the lock.
   */
  lock(path: string): FileLock;
  /**
   * Frees the lock `path` when its holder is in this process but known to be gone (a worker
   * thread that was terminated before it released it) or is dead. No-op when nothing holds it.
   * Throws LockedError when a live process other than this one holds it.
   * REQUIRES: no live holder of `path` in this process: it would lose its lock unnoticed.
   */
  breakLock(path: string): void;
}

/** The lock file of a store's or a cluster's directory, as LevelDB's `LOCK`. */
export const LOCK_FILE_NAME = "LOCK";

/**
 * Locks `directory` (its LOCK file) for `action`. A held lock becomes
 * `LockedError("<action> failed: <directory> is locked by process 1234")` naming the directory.
 */
export function lockDirectory(fs: FileSystem, directory: string, action: string): FileLock {
  try {
    return fs.lock(joinPath(directory, LOCK_FILE_NAME));
  } catch (error) {
    if (!(error instanceof LockedError)) throw error;
    const holder = / is held by (.+)$/.exec(error.message)?.[1] ?? "another holder";
    throw new LockedError(`${action} failed: ${directory} is locked by ${holder}`, directory, error.pid);
  }
}

export function joinPath(...parts: string[]): string {
  return parts.join("/").replace(/\/+/g, "/");
}

export function parentDirectory(path: string): string {
  const index = path.lastIndexOf("/");
  if (index < 0) return ".";
  if (index === 0) return "/";
  return path.slice(0, index);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/**
 * Durably replaces `path` with `bytes`: writes `temporaryPath` (removing one a crash left), syncs
 * it, renames it over `path`, syncs the directory. Returns once the new content survives a crash;
 * a crash before that leaves the old file or the new one, whole, never a mix.
 */
export function replaceFileDurably(fs: FileSystem, path: string, temporaryPath: string, bytes: Uint8Array): void {
  fs.remove(temporaryPath);
  const handle = fs.open(temporaryPath, "create");
  try {
    handle.append(bytes);
    handle.sync();
  } finally {
    handle.close();
  }
  fs.rename(temporaryPath, path);
  fs.syncDirectory(parentDirectory(path));
}
