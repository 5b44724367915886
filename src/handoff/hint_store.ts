/**
 * The hints a node holds for others (sloppy quorum): when a key's primary replica is down, the
 * coordinator sends the write to the next healthy node of the ring instead, which keeps it here,
 * durably (its own Store, in `<node directory>/hints`, under the cluster's fsync policy), until it
 * can hand it back. A hint is the whole version set of one key for one target, stored under
 * `target:u32be ++ key` and merged with the dominance rule like any replica's copy, so a fallback
 * answers reads and repairs for the key as the primary would.
 *
 * Bounds: at most `bytesPerTargetMax` bytes of hints per target (keys plus version blobs plus
 * values); a hint past it is refused and counted. Pure over the injected Store.
 */
import { applyReplicated, type SiblingLimits, siblingLimits } from "../coordinator/replica_apply.ts";
import type { Store } from "../storage/store.ts";
import type { Version } from "../storage/version_set_format.ts";
import { compareBytes } from "../util/bytes.ts";
import { limits } from "../util/limits.ts";
import { decodeVersion } from "../version/version_codec.ts";

/** The oldest dot timestamp among `versions` (Infinity for none). */
function oldestMs(versions: readonly Version[]): number {
  let oldest = Number.POSITIVE_INFINITY;
  for (const version of versions) oldest = Math.min(oldest, decodeVersion(version.version).dot.timestampMs);
  return oldest;
}

/** The hint store's directory, inside the node's store directory. */
export const HINTS_DIRECTORY = "hints";

/** The hint store's memtable: hints are few and short-lived, a quarter of the node's is plenty. */
export function hintMemtableBytes(nodeMemtableBytes: number): number {
  return Math.max(limits.memtableBytesMin, Math.floor(nodeMemtableBytes / 4));
}

/** Bytes of a target id in front of each hinted key. */
const TARGET_BYTES = 4;

export interface HintEntry {
  readonly target: number;
  readonly key: Uint8Array;
  readonly versions: readonly Version[];
}

export interface HintTargetStats {
  readonly target: number;
  readonly keys: number;
  readonly bytes: number;
}

export type HintOutcome = "stored" | "refused-bytes" | "refused-siblings" | "refused-store";

function versionsBytes(key: Uint8Array, versions: readonly Version[]): number {
  let bytes = key.length;
  for (const version of versions) bytes += version.version.length + (version.value?.length ?? 0);
  return bytes;
}

export function sameVersions(a: readonly Version[], b: readonly Version[]): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) {
    const left = a[index]!;
    const right = b[index]!;
    if (compareBytes(left.version, right.version) !== 0) return false;
    if ((left.value === null) !== (right.value === null)) return false;
    if (left.value !== null && right.value !== null && compareBytes(left.value, right.value) !== 0) return false;
  }
  return true;
}

export class HintStore {
  readonly store: Store;
  readonly #held = new Map<number, { keys: number; bytes: number }>();
  /** Oldest version timestamp stored since the store last held nothing (Infinity: none). */
  #floorMs = Number.POSITIVE_INFINITY;
  refusedBytes = 0;
  #onDrop: ((versions: readonly Version[]) => void) | undefined;
  #onTargetAdded: (() => void) | undefined;

  /** `store` holds nothing but hints. Counts what it holds (a scan). */
  constructor(store: Store) {
    this.store = store;
    for (const entry of store.entries()) {
      if (entry.versions.length === 0) continue;
      const target = targetOf(entry.key);
      this.#account(target, versionsBytes(entry.key, entry.versions), 1);
      this.#floorMs = Math.min(this.#floorMs, oldestMs(entry.versions));
    }
  }

  /**
   * A bound on the oldest version any hint here holds: no held hint holds an older one. 0 when
   * the store holds no hints. It only falls while hints are held (kept exactly it would need a
   * scan) and starts over once every hint is handed back. Gossip carries it (gossip.ts).
   */
  get floorMs(): number {
    return this.#held.size === 0 ? 0 : this.#floorMs;
  }

  #account(target: number, bytes: number, keys: number): void {
    const held = this.#held.get(target) ?? { keys: 0, bytes: 0 };
    const added = !this.#held.has(target);
    held.bytes += bytes;
    held.keys += keys;
    if (held.keys <= 0) this.#held.delete(target);
    else this.#held.set(target, held);
    if (added && this.#held.has(target)) this.#onTargetAdded?.();
    if (this.#held.size === 0) this.#floorMs = Number.POSITIVE_INFINITY;
  }

  /** Whether no hint is held for any target (cheap: every write asks). */
  get empty(): boolean {
    return this.#held.size === 0;
  }

  /** The versions held for `key` on behalf of `target` ([] when none). */
  get(target: number, key: Uint8Array): Version[] {
    return this.store.get(hintKey(target, key));
  }

  /**
   * Merges `incoming` into the hint of `target` for `key` and resolves once it is durable, or
   * refuses (past the byte bound, or the sibling limit) and writes nothing.
   */
  async merge(target: number, key: Uint8Array, incoming: readonly Version[], options: { bytesPerTargetMax: number; limits?: SiblingLimits }): Promise<HintOutcome> {
    const store = this.store;
    if (store.failure) return "refused-store";
    if (store.writeWouldWait) await store.whenWritable();
    const stored = hintKey(target, key);
    const local = store.get(stored);
    const applied = applyReplicated({ key, localVersions: local, incoming, limits: options.limits ?? siblingLimits });
    if (!applied.ok) return "refused-siblings";
    const growth = versionsBytes(stored, applied.versions) - (local.length === 0 ? 0 : versionsBytes(stored, local));
    const held = this.#held.get(target)?.bytes ?? 0;
    if (growth > 0 && held + growth > options.bytesPerTargetMax) {
      this.refusedBytes++;
      return "refused-bytes";
    }
    this.#account(target, growth, local.length === 0 ? 1 : 0);
    this.#floorMs = Math.min(this.#floorMs, oldestMs(applied.versions));
    await store.put(stored, applied.versions);
    return "stored";
  }

  /** Targets this node holds hints for, ascending. */
  targets(): number[] {
    return [...this.#held.keys()].sort((a, b) => a - b);
  }

  /** The hints held for `target`, in key order (a snapshot of the store as of the call). */
  *entries(target: number): Generator<HintEntry> {
    const start = new Uint8Array(TARGET_BYTES);
    new DataView(start.buffer).setUint32(0, target);
    const end = new Uint8Array(TARGET_BYTES);
    const endView = new DataView(end.buffer);
    // The range ends before the next target's prefix (the last target has no upper bound).
    const last = target === 0xffffffff;
    if (!last) endView.setUint32(0, target + 1);
    for (const entry of this.store.entries(last ? { start } : { start, end })) {
      if (entry.versions.length === 0) continue;
      yield { target, key: entry.key.subarray(TARGET_BYTES), versions: entry.versions };
    }
  }

  /**
   * Called when a target that had no hints here gets one, before the hint is written: readers
   * must learn of it (gossip) before it can be acknowledged.
   */
  onTargetAdded(listener: () => void): void {
    this.#onTargetAdded = listener;
  }

  /** Called with the versions of each hint about to be dropped, before the drop is written. */
  onDrop(listener: (versions: readonly Version[]) => void): void {
    this.#onDrop = listener;
  }

  /**
   * Drops the hint of `target` for `key` if it still holds exactly `handed` (what was handed back);
   * a hint that changed since (a newer write arrived) stays, to be handed back next time.
   */
  async dropIfUnchanged(target: number, key: Uint8Array, handed: readonly Version[]): Promise<boolean> {
    const store = this.store;
    if (store.writeWouldWait) await store.whenWritable();
    const stored = hintKey(target, key);
    const local = store.get(stored);
    if (local.length === 0 || !sameVersions(local, handed)) return false;
    this.#account(target, -versionsBytes(stored, local), -1);
    this.#onDrop?.(local);
    await store.put(stored, []);
    return true;
  }

  /**
   * `dropIfUnchanged` for many hints of `target` in one atomic write (one log record, one sync):
   * resolves with how many were dropped.
   */
  async dropManyIfUnchanged(target: number, handed: readonly { key: Uint8Array; versions: readonly Version[] }[]): Promise<number> {
    const store = this.store;
    if (store.writeWouldWait) await store.whenWritable();
    const operations: { key: Uint8Array; kind: "put"; versions: Version[] }[] = [];
    for (const { key, versions } of handed) {
      const stored = hintKey(target, key);
      const local = store.get(stored);
      if (local.length === 0 || !sameVersions(local, versions)) continue;
      this.#account(target, -versionsBytes(stored, local), -1);
      this.#onDrop?.(local);
      operations.push({ key: stored, kind: "put", versions: [] });
    }
    if (operations.length > 0) await store.write(operations);
    return operations.length;
  }

  stats(): HintTargetStats[] {
    return this.targets().map((target) => ({ target, ...this.#held.get(target)! }));
  }
}

export function hintKey(target: number, key: Uint8Array): Uint8Array {
  const stored = new Uint8Array(TARGET_BYTES + key.length);
  new DataView(stored.buffer).setUint32(0, target);
  stored.set(key, TARGET_BYTES);
  return stored;
}

function targetOf(stored: Uint8Array): number {
  return new DataView(stored.buffer, stored.byteOffset, stored.byteLength).getUint32(0);
}
