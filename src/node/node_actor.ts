/**
 * Which actor a node stamps its versions with, one per life of its store. A version vector names
 * an actor's events up to a counter, so a context covering the node's newest dot for a key also
 * covers its older dots for that key; that is sound only while the node's own store holds every
 * version it stamped. A crash can lose the last ones (a write other replicas acknowledged while
 * the local write was not yet synced), and so can a disk failure. So a node keeps its actor only
 * across a clean shutdown; after any other end it takes a fresh actor, never used before, handed
 * out by the cluster (Riak regenerates a vnode's id after an unclean restart for the same reason).
 *
 *   file := magic "LOOMACT1" (8 bytes) actor:u32le clean:u8 maskedCrc32c(actor, clean):u32le
 *
 * `<store directory>/ACTOR` says clean = 0 while the node runs and 1 once its store closed
 * cleanly. Pure over the FileSystem interface.
 */
import { joinPath, replaceFileDurably, type FileSystem } from "../io/file_system.ts";
import { crc32c, maskCrc, unmaskCrc } from "../util/crc32c.ts";
import { CorruptionError } from "../util/errors.ts";

export const NODE_ACTOR_FILE = "ACTOR";

/**
 * Fresh actors each life of a node gets for the writes it coordinates as a fallback (into the
 * hints it keeps for a primary that is down). Hints leave the node once handed back, so an actor
 * that stamped one cannot keep every version it stamped, as the node's own actor does: it is
 * retired the moment such a hint is dropped, and the next fallback write takes the next one.
 */
export const FALLBACK_ACTORS_PER_LIFE = 16;
const MAGIC = new TextEncoder().encode("LOOMACT1");
const FILE_BYTES = 8 + 4 + 1 + 4;

export class NodeActor {
  readonly #fs: FileSystem;
  readonly #directory: string;
  #actor: number;
  /** True when the last life ended cleanly and this one kept its actor. */
  readonly resumed: boolean;

  private constructor(fs: FileSystem, directory: string, actor: number, resumed: boolean) {
    this.#fs = fs;
    this.#directory = directory;
    this.#actor = actor;
    this.resumed = resumed;
  }

  /** The actor of this life's dots. */
  get actor(): number {
    return this.#actor;
  }

  /**
   * Stamps with `actor` from now on (a fresh one: the node dropped keys the old one stamped);
   * recorded durably before it returns, the life still marked running. Throws what the write throws.
   */
  replace(actor: number): void {
    write(this.#fs, this.#directory, actor, false);
    this.#actor = actor;
  }

  /**
   * Starts a life: the stored actor after a clean shutdown, else `freshActor()` (called only then).
   * Durably records the life as running before returning. CorruptionError on a damaged file.
   */
  static start(fs: FileSystem, directory: string, freshActor: () => number): NodeActor {
    const path = joinPath(directory, NODE_ACTOR_FILE);
    const stored = fs.exists(path) ? decodeActor(fs.readFile(path), path) : undefined;
    const resumed = stored?.clean === true;
    const actor = resumed ? stored.actor : freshActor();
    write(fs, directory, actor, false);
    return new NodeActor(fs, directory, actor, resumed);
  }

  /** Records a clean end: call once the store closed without error. */
  markClean(): void {
    write(this.#fs, this.#directory, this.actor, true);
  }
}

function write(fs: FileSystem, directory: string, actor: number, clean: boolean): void {
  const bytes = new Uint8Array(FILE_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  view.setUint32(8, actor, true);
  bytes[12] = clean ? 1 : 0;
  view.setUint32(13, maskCrc(crc32c(bytes.subarray(8, 13))), true);
  replaceFileDurably(fs, joinPath(directory, NODE_ACTOR_FILE), joinPath(directory, `${NODE_ACTOR_FILE}.tmp`), bytes);
}

function decodeActor(bytes: Uint8Array, path: string): { actor: number; clean: boolean } {
  if (bytes.length !== FILE_BYTES) throw new CorruptionError(`actor file is ${bytes.length} bytes, expected ${FILE_BYTES}`, path, 0);
  for (let index = 0; index < MAGIC.length; index++) {
    if (bytes[index] !== MAGIC[index]) throw new CorruptionError("actor file has a bad magic", path, 0);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (unmaskCrc(view.getUint32(13, true)) !== crc32c(bytes.subarray(8, 13))) throw new CorruptionError("actor file checksum mismatch", path, 13);
  return { actor: view.getUint32(8, true), clean: bytes[12] === 1 };
}
