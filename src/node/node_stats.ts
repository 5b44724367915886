/**
 * A node's counters as `stats()` reports them: requests coordinated and their latency, key counts
 * from a scan, the transport's and the store's figures, keys streamed by ring changes. Pure.
 */
import type { StoreStats } from "../storage/store_stats.ts";
import type { AntiEntropyStats } from "../antientropy/anti_entropy.ts";
import type { StoreEntry } from "../storage/store.ts";
import type { TransportStats } from "../transport/transport.ts";

/** The last LATENCY_SAMPLES request latencies of one kind, for percentiles. */
export const LATENCY_SAMPLES = 1024;

export class LatencySamples {
  readonly #samples = new Float64Array(LATENCY_SAMPLES);
  #count = 0;

  add(milliseconds: number): void {
    this.#samples[this.#count++ % LATENCY_SAMPLES] = milliseconds;
  }

  /** p50, p99 and max of the samples kept, in milliseconds (0 when there are none). */
  summary(): { p50: number; p99: number; max: number; samples: number } {
    const kept = this.#samples.slice(0, Math.min(this.#count, LATENCY_SAMPLES)).sort();
    const at = (quantile: number) => (kept.length === 0 ? 0 : kept[Math.min(kept.length - 1, Math.floor(quantile * kept.length))]!);
    return { p50: at(0.5), p99: at(0.99), max: at(1), samples: kept.length };
  }
}

/** A full scan's counts (stats with `scan`). */
export interface KeyCounts {
  /** Keys with at least one value. */
  readonly live: number;
  /** Keys whose versions are all tombstones. */
  readonly deleted: number;
  /** Keys holding more than one value (siblings), and the most any key holds. */
  readonly withSiblings: number;
  readonly siblingsMax: number;
}

export interface NodeStats {
  /**
   * The node thread's V8 heap (v8.getHeapStatistics(): used and reserved heap, and the external
   * memory V8 accounts for, such as array buffers), when the node runs on a worker thread.
   */
  readonly heap?: { readonly usedBytes: number; readonly totalBytes: number; readonly externalBytes: number };
  readonly nodeId: number;
  /** Only when asked for with `scan` (a full store scan). */
  readonly keys?: KeyCounts;
  /** The node's transport counters: messages, postMessage batches, clone fallbacks, malformed frames. */
  readonly transport: TransportStats;
  readonly requests: { readonly put: number; readonly get: number; readonly failed: number };
  readonly latencyMs: { readonly put: ReturnType<LatencySamples["summary"]>; readonly get: ReturnType<LatencySamples["summary"]> };
  readonly siblingWarnings: number;
  /**
   * Reads this node coordinated that asked only R replicas and then, one of those not having
   * answered within `readWaitMs`, the others too (a refusal also asks the others, uncounted);
   * `readWaitMs` is the 99th percentile of this node's last window of read round trips (ms).
   */
  readonly reads: { readonly speculative: number; readonly readWaitMs: number };
  /** Read repairs this node could not apply (its store refused the write). */
  readonly repairsFailed: number;
  /** This node's gossip view: each member's status and generation, and how often it marked one down. */
  readonly gossip: {
    readonly members: readonly { readonly node: number; readonly status: "up" | "down"; readonly generation: number }[];
    /** Members this node marked down since it started (its heartbeat stopped, or its exit was told). */
    readonly markedDown: number;
  };
  /** Merkle anti-entropy: exchanges, repairs, bytes, rebuilds, tombstones, tree roots per peer. */
  readonly antiEntropy: AntiEntropyStats;
  /** Hinted handoff: hints held for others, and what happened to hints. */
  readonly hints: {
    /** Per target: keys and bytes held. */
    readonly held: readonly { readonly target: number; readonly keys: number; readonly bytes: number }[];
    /** Hints handed back and dropped; chunks sent and not acknowledged; hints moved to a key's new replica. */
    readonly delivered: number;
    readonly chunks: number;
    readonly chunksFailed: number;
    readonly rehomed: number;
    /** Hints refused because their target's hints would pass handoff.bytesPerTargetMax. */
    readonly refusedBytes: number;
    /** Hints this node did not write as coordinator: the primary was down past handoff.windowMs. */
    readonly skippedWindow: number;
  };
  /** Keys streamed by ring changes since the node started: sent, received, and new on arrival. */
  readonly streamed: { readonly keysSent: number; readonly keysReceived: number; readonly keysNew: number };
  readonly store: {
    readonly memtableEntries: number;
    readonly memtableBytes: number;
    readonly tables: number;
    readonly tableBytes: number;
    /** Records in memtable and tables: an upper bound on keys (a key may have several records). */
    readonly records: number;
    readonly flushes: number;
    /** Flushes and compactions running or due now (0: the store is idle). */
    readonly backgroundJobs: number;
    /**
     * Why the node serves nothing: its store (or hint store) failed, say on a full disk or a
     * failed fsync; null while healthy. A restart on a healthy disk clears it.
     */
    readonly failure: string | null;
    /** Memory the store holds outside the JS heap (memtables, block cache, filters, indexes); see StoreStats. */
    readonly memory: StoreStats["memory"];
    readonly compactions: number;
  };
}

/** Counts live keys, deleted keys and keys holding siblings over a whole scan of a store. */
export function countKeys(entries: Iterable<StoreEntry>): KeyCounts {
  const counts = { live: 0, deleted: 0, withSiblings: 0, siblingsMax: 0 };
  for (const { versions } of entries) {
    const values = versions.filter((version) => version.value !== null).length;
    if (values === 0) counts.deleted++;
    else counts.live++;
    if (values > 1) counts.withSiblings++;
    counts.siblingsMax = Math.max(counts.siblingsMax, values);
  }
  return counts;
}
