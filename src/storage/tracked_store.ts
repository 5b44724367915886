/**
 * A node's store as its protocol code sees it: every write is reported, with the key's versions
 * before and after, so that anti-entropy keeps its Merkle trees up to date as writes land
 * (src/antientropy/). Reads and scans pass through. A write is reported in the same synchronous
 * block as it enters the memtable, so "before" is exactly what it replaced.
 * REQUIRES: callers write only when `writeWouldWait` is false (every node path awaits
 * `whenWritable` first), and only whole version sets (`kind: "put"`).
 */
import type { Store, StoreEntry, StoreStats, WriteOperation } from "./store.ts";
import type { StoreConfig } from "./store_config.ts";
import type { Version } from "./version_set_format.ts";
import type { KeyInput } from "./store_input.ts";
import { assert } from "../util/assert.ts";

/** What a node's code uses of its store. */
export interface NodeStore {
  readonly config: StoreConfig;
  readonly writeWouldWait: boolean;
  readonly failure: Error | undefined;
  get(key: KeyInput): Version[];
  entries(options?: { start?: Uint8Array; end?: Uint8Array }): Generator<StoreEntry>;
  /** `before`: the key's versions, read in the same synchronous block (saves a read). */
  put(key: Uint8Array, versions: readonly Version[], before?: readonly Version[]): Promise<void>;
  /** `befores`: each operation's key's versions, read in the same synchronous block. */
  write(operations: readonly WriteOperation[], befores?: readonly (readonly Version[])[]): Promise<void>;
  whenWritable(): Promise<void>;
  stats(): StoreStats;
  compact(): Promise<void>;
}

export type WriteObserver = (key: Uint8Array, before: readonly Version[], after: readonly Version[]) => void;

export class TrackedStore implements NodeStore {
  readonly inner: Store;
  #observer: WriteObserver | undefined;
  #untracked: (() => void) | undefined;

  constructor(inner: Store) {
    this.inner = inner;
  }

  /**
   * The one observer of writes (anti-entropy); replaces any earlier one. `untracked` is called
   * when a write landed that could not be reported exactly.
   */
  observe(observer: WriteObserver, untracked: () => void): void {
    this.#observer = observer;
    this.#untracked = untracked;
  }

  get config(): StoreConfig {
    return this.inner.config;
  }

  get writeWouldWait(): boolean {
    return this.inner.writeWouldWait;
  }

  get failure(): Error | undefined {
    return this.inner.failure;
  }

  get(key: KeyInput): Version[] {
    return this.inner.get(key);
  }

  entries(options?: { start?: Uint8Array; end?: Uint8Array }): Generator<StoreEntry> {
    return this.inner.entries(options);
  }

  whenWritable(): Promise<void> {
    return this.inner.whenWritable();
  }

  stats(): StoreStats {
    return this.inner.stats();
  }

  /** A major compaction changes no key's versions: nothing to report. */
  compact(): Promise<void> {
    return this.inner.compact();
  }

  put(key: Uint8Array, versions: readonly Version[], before?: readonly Version[]): Promise<void> {
    return this.write([{ key, kind: "put", versions }], before === undefined ? undefined : [before]);
  }

  /** Each operation's "before": the store's versions, or the batch's earlier write of the same key. */
  #befores(operations: readonly WriteOperation[]): (readonly Version[])[] {
    // A key written twice in one batch: its second "before" is its first "after".
    const pending = operations.length > 1 ? new Map<string, readonly Version[]>() : undefined;
    return operations.map((operation) => {
      assert(operation.kind === "put", "a node writes whole version sets");
      const key = operation.key as Uint8Array;
      if (!pending) return this.inner.get(key);
      const id = key.join(",");
      const before = pending.get(id) ?? this.inner.get(key);
      pending.set(id, operation.versions as readonly Version[]);
      return before;
    });
  }

  write(operations: readonly WriteOperation[], given?: readonly (readonly Version[])[]): Promise<void> {
    const observer = this.#observer;
    if (observer === undefined || this.inner.failure) return this.inner.write(operations);
    const befores = given ?? this.#befores(operations);
    const sequence = this.inner.lastSequence;
    const written = this.inner.write(operations);
    // Reported only if the batch entered the memtable in this call. One that did not was refused
    // (nothing changed) or waited for a flush despite the REQUIRES above: if it lands later, its
    // "before" is stale, and the observer is told to start over from the store.
    if (this.inner.lastSequence === sequence + operations.length) {
      operations.forEach((operation, index) => observer(operation.key as Uint8Array, befores[index]!, operation.versions as readonly Version[]));
    } else {
      written.then(() => this.#untracked?.(), () => {});
    }
    return written;
  }
}
