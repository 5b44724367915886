/**
 * An in-memory FileSystem for deterministic simulation. It keeps, for every file, the bytes a
 * reader sees now (current) and the bytes that would survive a power loss (durable), and for every
 * directory the entries a reader sees now and the entries that would survive. `crash()` throws
 * away everything not durable, exactly as the contract in file_system.ts allows and no more
 * kindly: a storage engine that passes its crash tests here relies only on what it synced.
 *
 * Model:
 * - `FileHandle.sync()` makes the file's current content durable.
 * - Creating, renaming or removing a file changes the directory's current entries only; the
 *   change survives a crash once `syncDirectory()` of that directory returns. A rename across two
 *   directories needs both synced; with only one synced a crash may leave the file under both
 *   names (like a hard link) or neither.
 * - Directories themselves are durable at once: `makeDirectory` and `removeTree` of a directory
 *   survive a crash without any sync (a simplification: real file systems need an fsync of the
 *   parent). Directories cannot be renamed here (the real one can); doing so throws IoError.
 * - A crash keeps, per file, the durable bytes plus a prefix of the bytes appended since the last
 *   sync (a torn tail), and may or may not keep an unsynced truncate. See CrashOptions.
 * - Relative paths are taken from "/" (the simulated working directory).
 * - Locks are held in memory, not as files: the simulator is one process, so a second `lock()` of
 *   a held path fails (LockedError without a pid), and `crash()` drops every lock, as the death of
 *   the holding process would.
 *
 * All randomness (torn tails, read flips) comes from the Prng given to the constructor, drawn in
 * a fixed order, so the same seed and the same calls give the same outcome. Not thread-safe.
 */
import { concatBytes } from "../util/bytes.ts";
import { describe, IoError, LockedError, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import type { FileHandle, FileLock, FileSystem, OpenMode } from "./file_system.ts";
import type { Prng } from "./prng.ts";

export interface CrashOptions {
  /**
   * How many of the bytes appended since a file's last sync survive: "none" keeps none;
   * "random" keeps none, all, or a uniform prefix, each a third of the time; a function gets the
   * file's path and its unsynced byte count n and returns the count to keep, an integer in 0..n
   * (called only for files with n > 0, in path order).
   * @default "random"
   */
  tornTail?: "none" | "random" | ((path: string, unsyncedByteCount: number) => number);
  /**
   * Whether a truncate into durable bytes that was not synced survives: "revert" restores the
   * durable content (and drops every unsynced byte), "keep" applies it, "random" flips a coin.
   * @default "random"
   */
  unsyncedTruncate?: "revert" | "keep" | "random";
}

export interface SetContentOptions {
  /**
   * True: the content (and the directory entry) is durable at once, as after a clean shutdown.
   * False: only the current content changes, as if written and not yet synced.
   * @default true
   */
  durable?: boolean;
}

const EMPTY = new Uint8Array(0);

/** A file's fate in a crash: its durable content restored, or durable plus an unsynced prefix. */
type RecoveryOutcome = { revertTruncate: true } | { revertTruncate: false; keptUnsyncedBytes: number };
const FLIP_MASK = 0xff;

function commonPrefixLength(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  let index = 0;
  while (index < length && a[index] === b[index]) index += 1;
  return index;
}

/**
 * One file's bytes. Invariant: bytes [0, stableLength) are the same in the current and the durable
 * content, and stableLength <= length, so durable = data[0, stableLength) + durableTail. The tail is
 * non-empty only after an unsynced truncate cut into durable bytes. Appends and syncs are O(1)
 * amortized: nothing is copied to make bytes durable.
 */
class SimFile {
  #data: Uint8Array = EMPTY;
  #length = 0;
  #stableLength = 0;
  #durableTail: Uint8Array = EMPTY;

  get length(): number {
    return this.#length;
  }

  get durableLength(): number {
    return this.#stableLength + this.#durableTail.length;
  }

  get unsyncedByteCount(): number {
    return this.#length - this.#stableLength;
  }

  get hasUnsyncedTruncate(): boolean {
    return this.#durableTail.length > 0;
  }

  /** A view of the current content, valid until the next change. */
  current(): Uint8Array {
    return this.#data.subarray(0, this.#length);
  }

  /** A fresh copy of the durable content. */
  durable(): Uint8Array {
    return concatBytes([this.#data.subarray(0, this.#stableLength), this.#durableTail]);
  }

  append(bytes: Uint8Array): void {
    this.#reserve(this.#length + bytes.length);
    this.#data.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  truncate(length: number): void {
    if (length < this.#stableLength) {
      this.#durableTail = concatBytes([this.#data.subarray(length, this.#stableLength), this.#durableTail]);
      this.#stableLength = length;
    }
    if (length > this.#length) {
      this.#reserve(length);
      this.#data.fill(0, this.#length, length);
    }
    this.#length = length;
  }

  sync(): void {
    this.#stableLength = this.#length;
    this.#durableTail = EMPTY;
  }

  replace(bytes: Uint8Array, durable: boolean): void {
    const oldDurable = durable ? EMPTY : this.durable();
    this.#data = bytes.slice();
    this.#length = bytes.length;
    if (durable) {
      this.sync();
      return;
    }
    this.#stableLength = commonPrefixLength(oldDurable, bytes);
    this.#durableTail = oldDurable.slice(this.#stableLength);
  }

  /** Inverts the byte at `offset` wherever it exists: current content, durable content, or both. */
  flip(offset: number): void {
    if (offset < this.#length) this.#data[offset]! ^= FLIP_MASK;
    const tailOffset = offset - this.#stableLength;
    if (tailOffset >= 0 && tailOffset < this.#durableTail.length) this.#durableTail[tailOffset]! ^= FLIP_MASK;
  }

  /** After a crash: durable content plus the first `keptUnsyncedBytes`, or the reverted content. */
  recover(outcome: RecoveryOutcome): void {
    if (outcome.revertTruncate) {
      const tail = this.#durableTail;
      this.#reserve(this.#stableLength + tail.length);
      this.#data.set(tail, this.#stableLength);
      this.#length = this.#stableLength + tail.length;
    } else {
      this.#length = this.#stableLength + outcome.keptUnsyncedBytes;
    }
    this.sync();
  }

  #reserve(capacity: number): void {
    if (capacity <= this.#data.length) return;
    const grown = new Uint8Array(Math.max(capacity, this.#data.length * 2, 64));
    grown.set(this.#data.subarray(0, this.#length));
    this.#data = grown;
  }
}

class SimDirectory {
  /** Entries a reader sees now. */
  readonly entries = new Map<string, SimNode>();
  /** Entries that survive a crash. Subdirectory entries are always the same in both maps. */
  readonly durableEntries = new Map<string, SimNode>();
}

type SimNode = SimFile | SimDirectory;

/** What a handle needs from its file system. */
interface HandleHost {
  /** Throws IoError if a sync failure is armed for `path`. */
  checkSync(path: string): void;
  /** May corrupt bytes just read (setReadFlipProbability). */
  afterRead(bytes: Uint8Array): void;
  release(handle: SimFileHandle): void;
}

class SimFileHandle implements FileHandle {
  readonly path: string;
  readonly #file: SimFile;
  readonly #mode: OpenMode;
  readonly #host: HandleHost;
  #state: "open" | "closed" | "crashed" = "open";

  constructor(path: string, file: SimFile, mode: OpenMode, host: HandleHost) {
    this.path = path;
    this.#file = file;
    this.#mode = mode;
    this.#host = host;
  }

  #checkOpen(action: string): void {
    if (this.#state === "closed") throw new IoError(`${action} failed: file is closed`, this.path);
    if (this.#state === "crashed") throw new IoError(`${action} failed: handle was lost in a simulated crash`, this.path);
  }

  append(data: Uint8Array): void {
    this.#checkOpen("append");
    if (this.#mode === "read") throw new IoError("append failed: file is open for reading only", this.path);
    if (!(data instanceof Uint8Array)) throw new LoomTypeError(`append failed: data is ${describe(data)}, must be a Uint8Array`);
    this.#file.append(data);
  }

  readAt(buffer: Uint8Array, position: number): number {
    this.#checkOpen("read");
    // "create" opens write-only, like O_WRONLY on the real disk.
    if (this.#mode === "create") throw new IoError("read failed: file is open for writing only", this.path);
    if (!Number.isSafeInteger(position) || position < 0) {
      throw new LoomRangeError(`read failed: position is ${describe(position)}, must be an integer >= 0`);
    }
    const content = this.#file.current();
    const count = Math.max(0, Math.min(buffer.length, content.length - position));
    buffer.set(content.subarray(position, position + count));
    this.#host.afterRead(buffer.subarray(0, count));
    return count;
  }

  size(): number {
    this.#checkOpen("size");
    return this.#file.length;
  }

  sync(): void {
    this.#checkOpen("sync");
    this.#host.checkSync(this.path);
    this.#file.sync();
  }

  truncate(length: number): void {
    this.#checkOpen("truncate");
    if (this.#mode === "read") throw new IoError("truncate failed: file is open for reading only", this.path);
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new LoomRangeError(`truncate failed: length is ${describe(length)}, must be an integer >= 0`);
    }
    this.#file.truncate(length);
  }

  /** Idempotent. A handle lost in a crash closes silently, so that teardown code can run. */
  close(): void {
    if (this.#state !== "open") return;
    this.#state = "closed";
    this.#host.release(this);
  }

  /** Called by crash(): every later use except close() throws IoError. */
  invalidate(): void {
    this.#state = "crashed";
  }
}

/** Path segments from "/", after dropping empty and "." segments and applying "..". */
function segmentsOf(path: string): string[] {
  if (typeof path !== "string") throw new LoomTypeError(`file system failed: path is ${describe(path)}, must be a string`);
  const segments: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  return segments;
}

function normalizePath(path: string): string {
  return `/${segmentsOf(path).join("/")}`;
}

function matches(pattern: string | RegExp | undefined, normalizedPath: string): boolean {
  if (pattern === undefined) return true;
  if (typeof pattern === "string") return normalizePath(pattern) === normalizedPath;
  pattern.lastIndex = 0;
  return pattern.test(normalizedPath);
}

export class SimFileSystem implements FileSystem {
  readonly #prng: Prng;
  readonly #root = new SimDirectory();
  readonly #openHandles = new Set<SimFileHandle>();
  /** Held locks by normalized path. */
  readonly #locks = new Map<string, FileLock>();
  /** Armed sync failures, oldest first; each is used up by the first sync it matches. */
  readonly #syncFailures: (string | RegExp | undefined)[] = [];
  #readFlipProbability = 0;
  readonly #host: HandleHost;

  /** `prng` drives torn tails and read flips; the file system draws from it in a fixed order. */
  constructor(prng: Prng) {
    this.#prng = prng;
    this.#host = {
      checkSync: (path) => this.#checkSync(path),
      afterRead: (bytes) => this.#afterRead(bytes),
      release: (handle) => this.#openHandles.delete(handle),
    };
  }

  open(path: string, mode: OpenMode): FileHandle {
    const action = `open (${mode})`;
    if (mode !== "read" && mode !== "create" && mode !== "append") {
      throw new LoomTypeError(`${action} failed: mode is ${describe(mode)}, must be "read", "create" or "append"`);
    }
    const { parent, name } = this.#parentOf(path, action);
    let node = parent.entries.get(name);
    if (node instanceof SimDirectory) throw new IoError(`${action} failed: is a directory`, path);
    if (node !== undefined && mode === "create") throw new IoError(`${action} failed: file already exists`, path);
    if (node === undefined) {
      if (mode === "read") throw new IoError(`${action} failed: no such file`, path);
      node = new SimFile();
      parent.entries.set(name, node);
    }
    const handle = new SimFileHandle(path, node, mode, this.#host);
    this.#openHandles.add(handle);
    return handle;
  }

  readFile(path: string): Uint8Array {
    const bytes = this.#fileAt(path, "read file").current().slice();
    this.#afterRead(bytes);
    return bytes;
  }

  exists(path: string): boolean {
    return this.#lookup(segmentsOf(path)) !== undefined;
  }

  list(directory: string): string[] {
    return [...this.#directoryAt(directory, "list").entries.keys()].sort();
  }

  makeDirectory(directory: string): void {
    let current = this.#root;
    for (const segment of segmentsOf(directory)) {
      const node = current.entries.get(segment);
      if (node instanceof SimFile) throw new IoError(`make directory failed: a file is in the way: ${segment}`, directory);
      if (node !== undefined) {
        current = node;
        continue;
      }
      const created = new SimDirectory();
      current.entries.set(segment, created);
      current.durableEntries.set(segment, created);
      current = created;
    }
  }

  rename(from: string, to: string): void {
    const action = `rename to ${to}`;
    const source = this.#parentOf(from, action);
    const node = source.parent.entries.get(source.name);
    if (node === undefined) throw new IoError(`${action} failed: no such file`, from);
    if (node instanceof SimDirectory) throw new IoError(`${action} failed: renaming a directory is not simulated`, from);
    const target = this.#parentOf(to, action, from);
    const replaced = target.parent.entries.get(target.name);
    if (replaced instanceof SimDirectory) throw new IoError(`${action} failed: target is a directory`, from);
    if (replaced === node) return;
    target.parent.entries.set(target.name, node);
    source.parent.entries.delete(source.name);
  }

  remove(path: string): void {
    const segments = segmentsOf(path);
    const node = this.#lookup(segments);
    if (node === undefined) return;
    if (node instanceof SimDirectory) throw new IoError("remove failed: is a directory", path);
    this.#parentOf(path, "remove").parent.entries.delete(segments.at(-1)!);
  }

  removeTree(directory: string): void {
    const segments = segmentsOf(directory);
    const node = this.#lookup(segments);
    if (node === undefined) return;
    if (node instanceof SimFile) return this.remove(directory);
    if (node === this.#root) {
      this.#root.entries.clear();
      this.#root.durableEntries.clear();
      return;
    }
    const { parent, name } = this.#parentOf(directory, "remove tree");
    parent.entries.delete(name);
    if (parent.durableEntries.get(name) === node) parent.durableEntries.delete(name);
  }

  syncDirectory(directory: string): void {
    const node = this.#directoryAt(directory, "sync directory");
    this.#checkSync(directory);
    node.durableEntries.clear();
    for (const [name, child] of node.entries) node.durableEntries.set(name, child);
  }

  lock(path: string): FileLock {
    const { parent, name } = this.#parentOf(path, "lock");
    if (parent.entries.get(name) instanceof SimDirectory) throw new IoError("lock failed: is a directory", path);
    const key = normalizePath(path);
    if (this.#locks.has(key)) throw new LockedError(`lock failed: ${path} is held by this process (simulated)`, path);
    const locks = this.#locks;
    const lock: FileLock = {
      path,
      release() {
        if (locks.get(key) === lock) locks.delete(key);
      },
    };
    locks.set(key, lock);
    return lock;
  }

  breakLock(path: string): void {
    this.#locks.delete(normalizePath(path));
  }

  // ---- Faults -----------------------------------------------------------------------------------

  /**
   * Simulates power loss, then a restart: every open handle is lost (later use throws IoError),
   * every directory reverts to its durable entries, and every file to its durable bytes plus a
   * torn tail (see CrashOptions). Files reachable only through non-durable entries are gone, and
   * every lock is dropped. The surviving state is durable. Armed sync failures and the read flip
   * probability stay set.
   */
  crash(options: CrashOptions = {}): void {
    const tornTail = options.tornTail ?? "random";
    const unsyncedTruncate = options.unsyncedTruncate ?? "random";
    if (tornTail !== "none" && tornTail !== "random" && typeof tornTail !== "function") {
      throw new LoomTypeError(`crash failed: tornTail is ${describe(tornTail)}, must be "none", "random" or a function`);
    }
    if (unsyncedTruncate !== "revert" && unsyncedTruncate !== "keep" && unsyncedTruncate !== "random") {
      throw new LoomTypeError(`crash failed: unsyncedTruncate is ${describe(unsyncedTruncate)}, must be "revert", "keep" or "random"`);
    }
    // Decide every file's fate first, so that a tornTail function that throws changes nothing.
    const outcomes: { file: SimFile; outcome: RecoveryOutcome }[] = [];
    for (const [file, path] of this.#durableFiles(this.#root, "", new Map())) {
      if (file.hasUnsyncedTruncate && this.#decideRevert(unsyncedTruncate)) {
        outcomes.push({ file, outcome: { revertTruncate: true } });
      } else {
        const keptUnsyncedBytes = this.#decideTornTail(tornTail, path, file.unsyncedByteCount);
        outcomes.push({ file, outcome: { revertTruncate: false, keptUnsyncedBytes } });
      }
    }
    for (const handle of this.#openHandles) handle.invalidate();
    this.#openHandles.clear();
    this.#locks.clear();
    this.#revertDirectory(this.#root);
    for (const { file, outcome } of outcomes) file.recover(outcome);
  }

  /**
   * Arms a failure: the next `FileHandle.sync()` or `syncDirectory()` whose path matches throws
   * IoError and makes nothing durable. A string matches the same normalized path, a RegExp is
   * tested against the normalized absolute path ("/data/000001.log"), no pattern matches any sync.
   * Several armed failures are used up in the order they were armed.
   */
  failNextSync(pathPattern?: string | RegExp): void {
    this.#syncFailures.push(pathPattern);
  }

  /** Bit rot at rest: inverts the byte at `offset` of the file, in current and durable content. */
  flipByte(path: string, offset: number): void {
    const file = this.#fileAt(path, "flip byte");
    const limit = Math.max(file.length, file.durableLength);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= limit) {
      throw new LoomRangeError(`flip byte failed: offset is ${describe(offset)}, file has ${limit} bytes`);
    }
    file.flip(offset);
  }

  /**
   * Flaky reads: each `readAt` and `readFile` that returns data inverts one random byte of what it
   * returns with this probability; data at rest is unchanged. 0 (the default) turns it off.
   */
  setReadFlipProbability(probability: number): void {
    if (!(probability >= 0 && probability <= 1)) {
      throw new LoomRangeError(`set read flip probability failed: probability is ${describe(probability)}, must be in 0..1`);
    }
    this.#readFlipProbability = probability;
  }

  // ---- Inspection for tests ---------------------------------------------------------------------

  /** A copy of the file's current content (what a reader sees now). */
  fileContent(path: string): Uint8Array {
    return this.#fileAt(path, "file content").current().slice();
  }

  /** A copy of the durable content of the file now at `path`. */
  durableContent(path: string): Uint8Array {
    return this.#fileAt(path, "durable content").durable();
  }

  /** Replaces a file's content, creating the file if needed (its directory must exist). */
  setContent(path: string, bytes: Uint8Array, options: SetContentOptions = {}): void {
    const durable = options.durable ?? true;
    const { parent, name } = this.#parentOf(path, "set content");
    let node = parent.entries.get(name);
    if (node instanceof SimDirectory) throw new IoError("set content failed: is a directory", path);
    if (node === undefined) {
      node = new SimFile();
      parent.entries.set(name, node);
    }
    if (durable) parent.durableEntries.set(name, node);
    node.replace(bytes, durable);
  }

  /** Sum of the current sizes of the files reachable now. */
  totalBytes(): number {
    const files = new Set<SimFile>();
    const visit = (directory: SimDirectory): void => {
      for (const node of directory.entries.values()) {
        if (node instanceof SimDirectory) visit(node);
        else files.add(node);
      }
    };
    visit(this.#root);
    let total = 0;
    for (const file of files) total += file.length;
    return total;
  }

  /** Handles opened and neither closed nor lost in a crash. */
  openHandleCount(): number {
    return this.#openHandles.size;
  }

  // ---- Internals --------------------------------------------------------------------------------

  #lookup(segments: readonly string[]): SimNode | undefined {
    let node: SimNode = this.#root;
    for (const segment of segments) {
      if (!(node instanceof SimDirectory)) return undefined;
      const child: SimNode | undefined = node.entries.get(segment);
      if (child === undefined) return undefined;
      node = child;
    }
    return node;
  }

  #fileAt(path: string, action: string): SimFile {
    const node = this.#lookup(segmentsOf(path));
    if (node === undefined) throw new IoError(`${action} failed: no such file`, path);
    if (node instanceof SimDirectory) throw new IoError(`${action} failed: is a directory`, path);
    return node;
  }

  #directoryAt(path: string, action: string): SimDirectory {
    const node = this.#lookup(segmentsOf(path));
    if (node === undefined) throw new IoError(`${action} failed: no such directory`, path);
    if (node instanceof SimFile) throw new IoError(`${action} failed: not a directory`, path);
    return node;
  }

  /**
   * The existing parent directory of `path` and the entry name; throws IoError naming `errorPath`
   * if there is none.
   */
  #parentOf(path: string, action: string, errorPath = path): { parent: SimDirectory; name: string } {
    const segments = segmentsOf(path);
    const name = segments.pop();
    if (name === undefined) throw new IoError(`${action} failed: is a directory`, errorPath);
    const parent = this.#lookup(segments);
    if (parent === undefined) throw new IoError(`${action} failed: no such directory`, errorPath);
    if (parent instanceof SimFile) throw new IoError(`${action} failed: not a directory`, errorPath);
    return { parent, name };
  }

  #checkSync(path: string): void {
    if (this.#syncFailures.length === 0) return;
    const normalized = normalizePath(path);
    const index = this.#syncFailures.findIndex((pattern) => matches(pattern, normalized));
    if (index < 0) return;
    this.#syncFailures.splice(index, 1);
    throw new IoError("sync failed: injected fault", path);
  }

  #afterRead(bytes: Uint8Array): void {
    if (bytes.length === 0 || this.#readFlipProbability === 0) return;
    if (!this.#prng.chance(this.#readFlipProbability)) return;
    bytes[this.#prng.nextInt(bytes.length)]! ^= FLIP_MASK;
  }

  /** Each file reachable through durable entries below `directory`, once, with its first path in name order. */
  #durableFiles(directory: SimDirectory, path: string, files: Map<SimFile, string>): Map<SimFile, string> {
    for (const name of [...directory.durableEntries.keys()].sort()) {
      const node = directory.durableEntries.get(name)!;
      const childPath = `${path}/${name}`;
      if (node instanceof SimDirectory) this.#durableFiles(node, childPath, files);
      else if (!files.has(node)) files.set(node, childPath);
    }
    return files;
  }

  /** Makes the current entries of `directory` and every directory below equal to the durable ones. */
  #revertDirectory(directory: SimDirectory): void {
    directory.entries.clear();
    for (const [name, node] of directory.durableEntries) {
      directory.entries.set(name, node);
      if (node instanceof SimDirectory) this.#revertDirectory(node);
    }
  }

  #decideRevert(policy: "revert" | "keep" | "random"): boolean {
    if (policy === "random") return this.#prng.chance(0.5);
    return policy === "revert";
  }

  #decideTornTail(policy: NonNullable<CrashOptions["tornTail"]>, path: string, unsynced: number): number {
    if (unsynced === 0 || policy === "none") return 0;
    if (policy === "random") {
      const roll = this.#prng.nextInt(3);
      return roll === 0 ? 0 : roll === 1 ? unsynced : this.#prng.nextInt(unsynced + 1);
    }
    const kept = policy(path, unsynced);
    if (!Number.isInteger(kept) || kept < 0 || kept > unsynced) {
      throw new LoomRangeError(`crash failed: tornTail returned ${describe(kept)} for ${path}, must be an integer in 0..${unsynced}`);
    }
    return kept;
  }
}
