/**
 * A cluster's data directory, for the main thread: checks the path, creates the directory if
 * needed (remembering what it created), holds `dataDir/LOCK` while the cluster is open, reads and
 * durably writes `cluster.json`, breaks the store lock of a node whose thread is gone, and undoes
 * a create that failed. Every access goes through the FileSystem interface, except making a new
 * temporary directory.
 *
 * Who holds which lock: the cluster (this object, in the main thread) holds `dataDir/LOCK`; each
 * node's worker thread holds `dataDir/node-<id>/LOCK` through its Store. All carry this process's
 * id. A node thread that was terminated (a crash) leaves its store lock behind, as a killed process
 * would; the cluster, which holds the directory and knows the thread has exited, breaks it before
 * the node starts again, or when the cluster closes.
 *
 * Thread contract: used from the thread that created the cluster.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLUSTER_FILE_TEMPORARY_NAME, readClusterFile, resolveStoredCluster, writeClusterFile, type StoredCluster } from "../cluster/cluster_file.ts";
import { joinPath, lockDirectory, LOCK_FILE_NAME, parentDirectory, type FileLock, type FileSystem } from "../io/file_system.ts";
import { describe, IoError, LockedError, LoomTypeError } from "../util/errors.ts";
import { HINTS_DIRECTORY } from "../handoff/hint_store.ts";

const ACTION = "create cluster";

/** Refuses a `dataDir` option that is not a usable path (LoomTypeError), before any IO. */
export function checkDataDirOption(dataDir: unknown): void {
  if (dataDir === undefined) return;
  if (typeof dataDir !== "string") throw new LoomTypeError(`${ACTION} failed: dataDir must be a string, got ${describe(dataDir)}`);
  if (dataDir === "") throw new LoomTypeError(`${ACTION} failed: dataDir must be a non-empty path, got ""`);
  if (dataDir.includes("\0")) throw new LoomTypeError(`${ACTION} failed: dataDir must not contain a NUL character`);
}

/** `cause` as an IoError naming `path`, the message saying what the cluster could not do. */
function refused(what: string, path: string, cause: unknown): IoError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new IoError(`${ACTION} failed: ${what} ${path}: ${detail}`, path, { cause, outcome: "not-applied" });
}

export class ClusterDirectory {
  readonly path: string;
  readonly #fs: FileSystem;
  readonly #lock: FileLock;
  /** The topmost directory this open created, removed again if the create fails. */
  readonly #created: string | undefined;
  /** Node directories that did not exist before the create: removed again if it fails. */
  #newNodeDirectories: string[] = [];

  private constructor(fs: FileSystem, path: string, lock: FileLock, created: string | undefined) {
    this.#fs = fs;
    this.path = path;
    this.#lock = lock;
    this.#created = created;
  }

  /**
   * Opens the data directory `requested` (a new temporary directory when undefined) for a cluster
   * with `settings`: checks the path, validates the settings, creates the directory if missing,
   * locks it, reads cluster.json. Writes nothing else. Returns the directory, locked, and the
   * cluster to open. Throws, having removed what it created and released the lock:
   * LoomTypeError/LoomRangeError (settings), IoError naming the path (a file in the way, a
   * directory that may not be created or written), LockedError (another cluster has it open),
   * CorruptionError naming cluster.json (a damaged file, left as it is).
   * REQUIRES: `checkDataDirOption(requested)` passed.
   */
  static open(fs: FileSystem, requested: string | undefined, settings: unknown): { directory: ClusterDirectory; stored: StoredCluster } {
    let path: string;
    let created: string | undefined;
    if (requested === undefined) {
      resolveStoredCluster("", undefined, settings); // refuse bad settings before making a directory
      try {
        path = created = mkdtempSync(join(tmpdir(), "loomkv-"));
      } catch (cause) {
        throw refused("cannot create a temporary directory in", tmpdir(), cause);
      }
    } else {
      path = requested;
      if (!isDirectory(fs, path)) {
        resolveStoredCluster(path, undefined, settings); // a new cluster: its settings alone must hold
        created = firstMissing(fs, path);
        try {
          fs.makeDirectory(path);
        } catch (cause) {
          removeTree(fs, created);
          throw refused("cannot create", path, cause);
        }
      }
    }
    let lock: FileLock;
    try {
      lock = lockDirectory(fs, path, ACTION);
    } catch (error) {
      removeTree(fs, created);
      throw error instanceof LockedError ? error : refused("cannot lock", path, error);
    }
    const directory = new ClusterDirectory(fs, path, lock, created);
    try {
      return { directory, stored: resolveStoredCluster(path, directory.#read(), settings) };
    } catch (error) {
      directory.abandon();
      throw error;
    }
  }

  nodeDirectory(node: number): string {
    return joinPath(this.path, `node-${node}`);
  }

  /** Notes which of `nodes` have no directory yet, so that a failed create removes the ones it made. */
  noteNewNodes(nodes: readonly number[]): void {
    this.#newNodeDirectories = nodes.map((node) => this.nodeDirectory(node)).filter((path) => !this.#fs.exists(path));
  }

  /**
   * Frees node `node`'s store lock. REQUIRES: the node's thread has exited (terminated, or never
   * released its lock): a live node would lose its lock unnoticed.
   */
  breakNodeLock(node: number): void {
    this.#fs.breakLock(joinPath(this.nodeDirectory(node), LOCK_FILE_NAME));
    // The node's hint store, beside its store, holds a lock of its own.
    const hints = joinPath(this.nodeDirectory(node), HINTS_DIRECTORY);
    if (this.#fs.exists(hints)) this.#fs.breakLock(joinPath(hints, LOCK_FILE_NAME));
  }

  /**
   * Deletes node `node`'s directory and everything in it (a wiped node starts again empty).
   * REQUIRES: the node's thread has exited.
   */
  removeNodeDirectory(node: number): void {
    this.#fs.removeTree(this.nodeDirectory(node));
  }

  /** The stored cluster, or undefined when there is no cluster.json. */
  #read(): StoredCluster | undefined {
    return readClusterFile(this.#fs, this.path);
  }

  /**
   * Replaces cluster.json with `stored`, durably: write a temporary file, fsync it, rename it over
   * cluster.json, fsync the directory. A crash leaves the old file or the new one, whole.
   */
  write(stored: StoredCluster): void {
    writeClusterFile(this.#fs, this.path, stored);
  }

  /**
   * Undoes a create that failed: removes the directories it made (all of the data directory if it
   * made that, otherwise only new node directories; a user's existing files stay) and releases the
   * lock. Best effort: never throws. REQUIRES: no node thread of this create is running.
   */
  abandon(): void {
    if (this.#created !== undefined) removeTree(this.#fs, this.#created);
    else for (const path of [...this.#newNodeDirectories, joinPath(this.path, CLUSTER_FILE_TEMPORARY_NAME)]) removeTree(this.#fs, path);
    try {
      this.#lock.release(); // after the removal: nobody else may lock a directory being removed
    } catch {
      // Best effort, like the removal: the caller reports the failure that made it give up.
    }
  }

  /** Releases the data directory's lock. */
  close(): void {
    this.#lock.release();
  }
}

/** Whether `path` is an existing directory; IoError naming it when something else is there. */
function isDirectory(fs: FileSystem, path: string): boolean {
  if (!fs.exists(path)) return false;
  try {
    fs.list(path);
    return true;
  } catch (cause) {
    throw refused("cannot use", path, cause);
  }
}

/** The topmost missing directory on the way to `path` (the one making `path` creates first). */
function firstMissing(fs: FileSystem, path: string): string {
  let missing = path;
  for (let parent = parentDirectory(missing); parent !== missing && !fs.exists(parent); parent = parentDirectory(parent)) missing = parent;
  return missing;
}

/**
 * Best-effort removal of what a failed create made (a file or a directory tree): never throws, so
 * that the failure that made the create give up is the one reported.
 */
function removeTree(fs: FileSystem, path: string | undefined): void {
  if (path === undefined || !fs.exists(path)) return;
  try {
    fs.removeTree(path);
  } catch {
    // Left behind; the create's own error says why it failed.
  }
}
