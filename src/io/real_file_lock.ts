/**
 * Exclusive locks on the real disk that Node and Deno processes honour alike and that never
 * outlive their holder. Node has no flock, and Deno's FsFile.lock would not exclude a Node
 * process, so a lock is a file created exclusively that names its holder (lock_file_format.ts):
 *
 * - take: write the holder to a unique temporary file, then link() it to the lock path. link()
 *   fails if the path exists, so exactly one taker wins, and the lock file is complete from the
 *   moment it exists (an O_EXCL create would show an empty file until its write lands).
 * - held: the file names a live process. Liveness is `process.kill(pid, 0)` (ESRCH: dead; EPERM:
 *   alive, someone else's), then on Linux the process start time and boot id, which a reused pid
 *   does not match. A file naming this process is held here: another store or cluster in this
 *   process has the directory open.
 * - stale (dead holder, or content that is not a complete lock file, as a power loss may leave):
 *   rename it aside under a unique name, check that what was moved is what was judged stale, and
 *   delete it; if another taker replaced it in between, link it back. Then take as above.
 * - release: delete the lock file if it still holds this lock's content.
 *
 * No staleness window: a lock whose holder was SIGKILLed is taken over at the next attempt.
 * Limits: needs hard links (local file systems have them); three takers racing on a stale lock
 * can, in a window of a few system calls, leave two holders (the second break restores a lock a
 * third taker already replaced).
 */
import * as fs from "node:fs";
import process from "node:process";
import { IoError, LockedError } from "../util/errors.ts";
import type { FileLock } from "./file_system.ts";
import { decodeLockFile, encodeLockFile, type LockHolder } from "./lock_file_format.ts";

/** Attempts to take a lock that keeps being broken or released under us before giving up. */
const TAKE_ATTEMPTS_MAX = 8;

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function ioError(action: string, path: string, cause: unknown): IoError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new IoError(`${action} failed: ${detail}`, path, { cause });
}

/** A name beside `path` that no other taker uses; never ends in ".tmp" (stores delete those). */
function uniqueSibling(path: string, purpose: string): string {
  return `${path}.${purpose}-${process.pid}-${Math.random().toString(36).slice(2, 12)}`;
}

function readIfPresent(path: string): string | undefined {
  try {
    return fs.readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat (start time), or undefined off Linux or if it cannot be read. */
function startTimeOf(pid: number): string | undefined {
  const stat = readIfPresent(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Field 2 (the command name) is in parentheses and may hold spaces: count after its last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[22 - 3];
}

/** This process's start time and the boot id, read once. */
let self: { readonly start: string | undefined; readonly boot: string | undefined } | undefined;

function selfIdentity(): { readonly start: string | undefined; readonly boot: string | undefined } {
  self ??= { start: startTimeOf(process.pid), boot: readIfPresent("/proc/sys/kernel/random/boot_id")?.trim() || undefined };
  return self;
}

function newHolder(): LockHolder {
  const { start, boot } = selfIdentity();
  return { pid: process.pid, start, boot, token: Math.random().toString(36).slice(2, 14) };
}

type HolderState = "this process" | "alive" | "dead";

/** Whether the process a lock file names still runs. Unknown cases count as alive. */
function stateOf(holder: LockHolder): HolderState {
  const { start: ownStart, boot } = selfIdentity();
  if (holder.boot !== undefined && boot !== undefined && holder.boot !== boot) return "dead";
  if (holder.pid === process.pid) {
    // Our pid, another start time: a process before us had this pid (containers reuse small pids).
    if (holder.start !== undefined && ownStart !== undefined && holder.start !== ownStart) return "dead";
    return "this process";
  }
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if (codeOf(error) === "ESRCH") return "dead";
    if (codeOf(error) !== "EPERM") return "alive"; // cannot tell: never break a lock on a guess
  }
  if (holder.start === undefined) return "alive";
  const start = startTimeOf(holder.pid);
  return start !== undefined && start !== holder.start ? "dead" : "alive";
}

function lockedError(path: string, holder: LockHolder, state: HolderState): LockedError {
  const who = state === "this process" ? `process ${holder.pid} (this process)` : `process ${holder.pid}`;
  return new LockedError(`lock failed: ${path} is held by ${who}`, path, holder.pid);
}

/** The lock file's bytes, or undefined if there is none. */
function readLockFile(path: string): Uint8Array | undefined {
  try {
    const buffer = fs.readFileSync(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    if (codeOf(error) === "ENOENT") return undefined;
    throw ioError("lock", path, error);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, index) => byte === b[index]);
}

/** Creates the lock file holding `content` if there is none; false if one exists. */
function tryCreate(path: string, content: Uint8Array): boolean {
  const temporary = uniqueSibling(path, "new");
  try {
    fs.writeFileSync(temporary, content, { flag: "wx" });
  } catch (error) {
    throw ioError("lock", path, error);
  }
  try {
    fs.linkSync(temporary, path);
    return true;
  } catch (error) {
    if (codeOf(error) === "EEXIST") return false;
    throw ioError("lock", path, error);
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

/**
 * Removes the lock file if it still holds exactly `judged` (the content found stale); a lock
 * taken by someone else in between is put back. Race-safe between processes: the rename moves
 * whatever is there at that instant, and the content check decides what to do with it.
 */
function removeIfUnchanged(path: string, judged: Uint8Array): void {
  const aside = uniqueSibling(path, "stale");
  try {
    fs.renameSync(path, aside);
  } catch (error) {
    if (codeOf(error) === "ENOENT") return; // released or broken by someone else meanwhile
    throw ioError("break lock", path, error);
  }
  try {
    const moved = fs.readFileSync(aside);
    if (sameBytes(new Uint8Array(moved.buffer, moved.byteOffset, moved.byteLength), judged)) return;
    try {
      fs.linkSync(aside, path);
    } catch (error) {
      if (codeOf(error) !== "EEXIST") throw error; // a third taker holds it now; that lock stands
    }
  } catch (error) {
    throw ioError("break lock", path, error);
  } finally {
    fs.rmSync(aside, { force: true });
  }
}

class RealFileLock implements FileLock {
  readonly path: string;
  readonly #content: Uint8Array;
  #released = false;

  constructor(path: string, content: Uint8Array) {
    this.path = path;
    this.#content = content;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    const current = readLockFile(this.path);
    if (current === undefined || !sameBytes(current, this.#content)) return; // broken and taken since
    try {
      fs.unlinkSync(this.path);
    } catch (error) {
      if (codeOf(error) !== "ENOENT") throw ioError("release lock", this.path, error);
    }
  }
}

export function takeLock(path: string): FileLock {
  const content = encodeLockFile(newHolder());
  for (let attempt = 0; attempt < TAKE_ATTEMPTS_MAX; attempt++) {
    if (tryCreate(path, content)) return new RealFileLock(path, content);
    const found = readLockFile(path);
    if (found === undefined) continue; // released meanwhile
    const holder = decodeLockFile(found);
    const state = holder === undefined ? "dead" : stateOf(holder);
    if (holder !== undefined && state !== "dead") throw lockedError(path, holder, state);
    removeIfUnchanged(path, found);
  }
  throw new LockedError(`lock failed: ${path} is held by another process (it changed hands ${TAKE_ATTEMPTS_MAX} times while this one tried)`, path);
}

export function breakLock(path: string): void {
  const found = readLockFile(path);
  if (found === undefined) return;
  const holder = decodeLockFile(found);
  if (holder !== undefined && stateOf(holder) === "alive") throw lockedError(path, holder, "alive");
  removeIfUnchanged(path, found);
}
