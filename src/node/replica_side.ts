/**
 * The replica side of a node: what it does with what its peers send it. It merges replicated
 * writes, read repairs and anti-entropy repairs into its store (or into the hints it keeps for a
 * primary that is down), answers reads, drops purged keys, and merges the hints handed back to it.
 * Every write keeps the dominance rule: a sibling is never overwritten.
 *
 * Thread contract: the thread that owns the node's store. Pure over the injected store, hint
 * store and Transport.
 */
import type { ReadReply } from "../coordinator/get_session.ts";
import { mergeEntries, streamSiblingLimits, type StreamEntry } from "../coordinator/merge_entries.ts";
import { applyReplicated } from "../coordinator/replica_apply.ts";
import type { HintStore } from "../handoff/hint_store.ts";
import { sameVersions } from "../handoff/hint_store.ts";
import { keyPosition } from "../ring/hash_ring.ts";
import type { Placement } from "../ring/ring_spec.ts";
import type { WriteOperation } from "../storage/store.ts";
import type { TrackedStore } from "../storage/tracked_store.ts";
import type { Version } from "../storage/version_set_format.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import type { Transport } from "../transport/transport.ts";
import { limits } from "../util/limits.ts";
import type { HandoffConfig } from "../handoff/handoff_config.ts";

/** One copy of the keys a node holds: its own store, or its hints for one target. */
export interface Slot {
  get(key: Uint8Array): Version[];
  /** Merges `incoming`; resolves once durable: true when written, false when refused. */
  merge(key: Uint8Array, incoming: readonly Version[]): Promise<boolean>;
}

export interface ReplicaSideOptions {
  readonly nodeId: number;
  readonly store: TrackedStore;
  /** Where the node keeps hints for others; without one, every slot is its own store. */
  readonly hints: HintStore | undefined;
  readonly transport: Transport;
  /** The ring in force (read at each use: it changes with the cluster's settings). */
  readonly placement: () => Placement;
  readonly handoff: () => HandoffConfig;
  /** The failure of the node's store or hint store, if one failed: it then answers no read. */
  readonly failure: () => Error | undefined;
}

export class ReplicaSide {
  readonly #nodeId: number;
  readonly #store: TrackedStore;
  readonly #hints: HintStore | undefined;
  readonly #transport: Transport;
  readonly #placement: () => Placement;
  readonly #handoff: () => HandoffConfig;
  readonly #failure: () => Error | undefined;
  /** The node's own store as a slot: made once, as nearly every replica-side operation addresses it. */
  readonly #own: Slot = { get: (key) => this.#store.get(key), merge: (key, incoming) => this.mergeLocal(key, incoming) };
  /** Read repairs this node could not apply (store refusing writes, sibling limit). */
  #repairsFailed = 0;

  constructor(options: ReplicaSideOptions) {
    this.#nodeId = options.nodeId;
    this.#store = options.store;
    this.#hints = options.hints;
    this.#transport = options.transport;
    this.#placement = options.placement;
    this.#handoff = options.handoff;
    this.#failure = options.failure;
  }

  get repairsFailed(): number {
    return this.#repairsFailed;
  }

  /**
   * Merges `incoming` into the local record (dominance rule, sibling limits) and resolves once the
   * result is durable under the store's fsync policy: true when written, false when refused.
   */
  async mergeLocal(key: Uint8Array, incoming: readonly Version[]): Promise<boolean> {
    // Read and write in one synchronous block, so no other merge of the key interleaves.
    if (this.#store.writeWouldWait) await this.#store.whenWritable();
    const local = this.#store.get(key);
    const applied = applyReplicated({ key, localVersions: local, incoming });
    if (!applied.ok) return false;
    await this.#store.put(key, applied.versions, local);
    return true;
  }

  /**
   * An anti-entropy repair: merges each entry into the key's versions (the dominance rule: a
   * sibling is never overwritten) and writes the keys that changed, in batches that fit the store;
   * resolves with how many changed. An entry past the sibling bound is skipped (a later write
   * with a context resolves the key; the next exchange tries again).
   */
  async mergeManyIfChanged(entries: readonly StreamEntry[]): Promise<number> {
    const batchBytesMax = Math.min(this.#store.config.memtableBytes / 4, limits.logBatchBytesMax / 2);
    let changed = 0;
    let index = 0;
    while (index < entries.length) {
      // Read and write in one synchronous block, so no other write of these keys interleaves.
      if (this.#store.writeWouldWait) await this.#store.whenWritable();
      const operations: WriteOperation[] = [];
      const befores: Version[][] = [];
      let bytes = 0;
      for (; index < entries.length && (operations.length === 0 || bytes < batchBytesMax); index++) {
        const { key, versions: incoming } = entries[index]!;
        const local = this.#store.get(key);
        const applied = applyReplicated({ key, localVersions: local, incoming, limits: streamSiblingLimits });
        if (!applied.ok || sameVersions(local, applied.versions)) continue;
        operations.push({ key, kind: "put", versions: applied.versions });
        befores.push(local);
        bytes += key.length + applied.versions.reduce((sum, version) => sum + version.version.length + (version.value?.length ?? 0) + 16, 0);
      }
      if (operations.length === 0) continue;
      await this.#store.write(operations, befores);
      changed += operations.length;
    }
    return changed;
  }

  /** A purge: drops `key` if it still holds exactly `versions` (nothing wrote it meanwhile). */
  async dropIfUnchanged(key: Uint8Array, versions: readonly Version[]): Promise<boolean> {
    if (this.#store.writeWouldWait) await this.#store.whenWritable();
    const local = this.#store.get(key);
    if (!sameVersions(local, versions)) return false;
    await this.#store.put(key, [], local);
    return true;
  }

  /**
   * A read repair: merged like any replicated write, answered to nobody. A failure (the store
   * refuses writes after a disk fault, or is closing) leaves the replica as stale as it was; the
   * next read repairs it again. Counted in stats.
   */
  repair(key: Uint8Array, versions: readonly Version[], hintFor?: number): void {
    // A repair for a key this node does not replicate (it answered a read as a stand-in, without
    // a hint for it) is dropped: a copy outside the replica set is one no purge would wait for.
    const placement = this.#placement();
    if (hintFor === undefined && !placement.ring.preferenceListAt(keyPosition(key), placement.n).includes(this.#nodeId)) return;
    this.slot(hintFor).merge(key, versions).then(
      (ok) => {
        if (!ok) this.#repairsFailed++;
      },
      () => {
        this.#repairsFailed++;
      },
    );
  }

  /** A coordinator's replicate message: merge durably, then acknowledge (ok false when refused). */
  async onReplicate(from: number, message: Message): Promise<void> {
    let ok = false;
    try {
      ok = await this.slot(message.hintFor as number | undefined).merge(message.key as Uint8Array, message.versions as Version[]);
    } catch {
      ok = false;
    }
    this.#transport.send(from, { type: MessageType.replicateAck, requestId: message.requestId, ok });
  }

  /**
   * The local versions of `key`, or a refusal when the store cannot read (closed, corrupt) or
   * failed: its memtable may hold what its log lost, which no reader may see.
   */
  readLocal(key: Uint8Array, hintFor?: number): ReadReply {
    if (this.#failure()) return { ok: false };
    try {
      return { ok: true, versions: this.slot(hintFor).get(key) };
    } catch {
      return { ok: false };
    }
  }

  /** Answers a read; a read of the hints held for a target says which target it read. */
  onRead(from: number, message: Message): void {
    const hintFor = message.hintFor as number | undefined;
    const reply = this.readLocal(message.key as Uint8Array, hintFor);
    const requestId = message.requestId;
    this.#transport.send(from, hintFor === undefined ? { type: MessageType.readReply, requestId, reply } : { type: MessageType.readReply, requestId, reply, hintFor });
  }

  /** The copy a replica-side operation addresses: this node's own store, or its hints for `hintFor`. */
  slot(hintFor: number | undefined): Slot {
    if (hintFor === undefined || !this.#hints) return this.#own;
    const hints = this.#hints;
    return {
      get: (key) => hints.get(hintFor, key),
      merge: async (key, incoming) => (await hints.merge(hintFor, key, incoming, { bytesPerTargetMax: this.#handoff().bytesPerTargetMax })) === "stored",
    };
  }

  /** A node handed back hints for this node: merge them durably, then acknowledge. */
  async onHints(from: number, message: Message): Promise<void> {
    let ok = true;
    try {
      await mergeEntries(this.#store, message.entries as StreamEntry[]);
    } catch {
      ok = false;
    }
    this.#transport.send(from, { type: MessageType.hintAck, chunk: message.chunk, ok });
  }
}
