/**
 * Merkle-tree anti-entropy for one node (docs/anti-entropy.md). The node keeps one SegmentTree per
 * peer it shares keys with, over exactly the keys both replicate under the current ring; every
 * write updates the trees of the key's other replicas by XOR, with no rescan. Every
 * `antiEntropy.intervalMs` the node compares trees with its next replica peer that is up:
 *
 *   initiator → merkleRequest (its branches)   responder: equal → agreed; else the leaves of
 *   ← merkleReply                              the branches that differ
 *   (the initiator compares again a moment later and keeps the segments that differ both times)
 *   initiator → aeSegments (differing segments S)
 *   both: scan the store for their keys of S, send each key's item hash (aeHashes), then push
 *   the entries whose hash the other side lacks (aeEntries, paced to antiEntropy.keysPerSecond and
 *   acknowledged by aeAck once merged); each merges what it receives like a repair (dominance
 *   rule: a sibling is never overwritten). A node takes part in one repair at a time.
 *
 * A key held identically on both sides costs 8 bytes per side in a differing segment and nothing
 * elsewhere; only keys that differ travel whole, from each side that holds them.
 *
 * Trees are rebuilt (at start, when the ring or the bucket count changes) by a scan of a store
 * snapshot (a pool job on real threads), the writes that land meanwhile applied on top, so traffic
 * never stops; exchanges wait until it is done. A segment the peer agreed on is remembered with the
 * wall time and the peer's generation (a restart may have lost what it held in memory): a key
 * holding only tombstones is purged `tombstoneGraceMs` after its delete once every other replica,
 * in its current life, agreed on the key's segment after this node took the tombstone, or told
 * this node it holds nothing for the key.
 *
 * This file holds the node's side of it all: switching on and off, rebuilds, the rounds, and the
 * dispatch of messages to the parts: the trees (tree_upkeep.ts), the comparison of trees
 * (tree_exchange.ts), the repair step (repair_session.ts), what peers agreed on
 * (segment_agreements.ts), the tombstone purge (tombstone_purge.ts), and the stats
 * (anti_entropy_stats.ts). Pure over its injected store, transport, clock and scan
 * (anti_entropy_options.ts).
 */
import type { TimerHandle } from "../io/clock.ts";
import type { Version } from "../storage/version_set_format.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import type { AntiEntropyOptions } from "./anti_entropy_options.ts";
import { newCounters, type AntiEntropyStats } from "./anti_entropy_stats.ts";
import { RepairSessions } from "./repair_session.ts";
import { SegmentAgreements } from "./segment_agreements.ts";
import { TombstonePurge } from "./tombstone_purge.ts";
import type { TreeBuild } from "./tree_build.ts";
import { TreeExchange } from "./tree_exchange.ts";
import { TreeUpkeep } from "./tree_upkeep.ts";

export type { AntiEntropyOptions } from "./anti_entropy_options.ts";
export { rootsAgree, type AntiEntropyStats } from "./anti_entropy_stats.ts";
export { sessionIdleMs } from "./repair_session.ts";
export { confirmDelayMs } from "./tree_exchange.ts";

export class AntiEntropy {
  readonly #options: AntiEntropyOptions;
  readonly #trees: TreeUpkeep;
  readonly #agreements: SegmentAgreements;
  readonly #tombstones: TombstonePurge;
  readonly #repairs: RepairSessions;
  readonly #exchange: TreeExchange;
  #enabled: boolean;
  #timer: TimerHandle | undefined;
  #stopped = false;
  #peerCursor = 0;
  readonly #stats = newCounters();

  constructor(options: AntiEntropyOptions) {
    this.#options = options;
    const stopped = () => this.#stopped;
    const trees = (this.#trees = new TreeUpkeep(options.self, options.placement(), options.config().buckets, this.#stats));
    const agreements = (this.#agreements = new SegmentAgreements(options.generationOf, () => trees.buckets));
    const tombstones = (this.#tombstones = new TombstonePurge({ options, stats: this.#stats, trees, agreements, stopped }));
    const repairs = (this.#repairs = new RepairSessions({ options, stats: this.#stats, trees, tombstones, stopped }));
    this.#exchange = new TreeExchange({ options, stats: this.#stats, trees, agreements, repairs, stopped, enabled: () => this.#enabled });
    this.#enabled = options.config().enabled;
    if (this.#enabled) void this.rebuild();
    this.#schedule();
  }

  /**
   * Settings or the ring changed (read from the options): switched off, the trees and everything
   * pending go; switched on, or a new ring or bucket count, the trees are rebuilt; a new interval
   * takes effect at once rather than after the pending round.
   */
  reconfigure(changes: { ring: boolean; buckets: boolean; intervalMs: boolean }): void {
    const enabled = this.#options.config().enabled;
    if (!enabled) {
      if (this.#enabled) this.#disable();
    } else if (!this.#enabled || changes.ring || changes.buckets) {
      this.#enabled = true;
      void this.rebuild();
    }
    if (changes.intervalMs && this.#timer !== undefined) {
      this.#options.clock.clearTimer(this.#timer);
      this.#schedule();
    }
  }

  #disable(): void {
    this.#enabled = false;
    this.#trees.clear();
    this.#agreements.clear();
    this.#repairs.clear();
    this.#exchange.clear();
    this.#tombstones.clear();
  }

  // ---- trees ---------------------------------------------------------------------------------

  /** A write landed: `key` went from `before` to `after`. */
  onWrite(key: Uint8Array, before: readonly Version[], after: readonly Version[]): void {
    if (!this.#enabled) return;
    this.#trees.onWrite(key, before, after);
    this.#tombstones.onWrite(key, before, after);
  }

  /**
   * Builds every tree anew from a snapshot of the store, the writes landing meanwhile applied on
   * top; exchanges wait until it ends. Called at start, and when the ring or the bucket count
   * changes. Open exchanges are dropped (their segments may mean something else now).
   */
  async rebuild(): Promise<void> {
    const placement = this.#options.placement();
    const buckets = this.#options.config().buckets;
    const building = this.#trees.begin(placement, buckets);
    this.#stats.rebuilds++;
    const startedMs = this.#options.clock.nowMs();
    const notedAtMs = this.#options.clock.wallMs();
    let build: TreeBuild;
    try {
      // The snapshot and the start of double-writing happen in this one synchronous block.
      build = await this.#options.scan({ self: this.#options.self, ring: this.#options.ring(), buckets });
    } catch {
      // The store closed or failed under the scan: keep the old trees; a restart rebuilds.
      this.#trees.abandon(building);
      return;
    }
    if (this.#stopped || !this.#trees.isBuilding(building)) return;
    this.#trees.fill(building, build);
    this.#tombstones.onScanned(build.tombstones, notedAtMs);
    this.#trees.adopt(building);
    this.#agreements.clear();
    this.#repairs.clear();
    this.#exchange.clear();
    this.#trees.finish();
    this.#stats.lastRebuildMs = this.#options.clock.nowMs() - startedMs;
  }

  /** The trees can no longer be trusted (a write could not be reported exactly): they start over. */
  restart(): void {
    if (this.#enabled) void this.rebuild();
  }

  // ---- rounds --------------------------------------------------------------------------------

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#options.clock.setTimer(this.#options.config().intervalMs, () => {
      this.#round();
      this.#schedule();
    });
  }

  /** One round: purge what may go, then compare trees with the next replica peer that is up. */
  #round(): void {
    if (this.#stopped || !this.#enabled || !this.#trusted()) return;
    this.#dropIdle();
    if (this.#trees.building) return;
    this.#tombstones.purge().catch(ignoreStoreFailure);
    // One repair at a time per node: a node that two peers repair at once gets everything twice.
    if (this.#repairs.size > 0) return;
    const peers = this.#trees.replicaPeers.filter((node) => this.#options.isUp(node));
    if (peers.length === 0) return;
    this.#stats.exchanges++;
    this.#exchange.compare(peers[this.#peerCursor++ % peers.length]!);
  }

  #dropIdle(): void {
    const nowMs = this.#options.clock.nowMs();
    this.#repairs.dropIdle(nowMs);
    this.#exchange.dropIdle(nowMs);
  }

  #trusted(): boolean {
    return this.#options.trusted?.() ?? true;
  }

  /** Dispatches an anti-entropy message; returns false for a type it does not handle. */
  receive(from: number, message: Message): boolean {
    if (this.#stopped) return true;
    if (!this.#enabled || !this.#trusted()) {
      // Switched off here, or the store failed: turn exchanges away; entries and the rest are dropped.
      if (message.type === MessageType.merkleRequest) this.#options.transport.send(from, { type: MessageType.merkleReply, exchange: message.exchange, busy: true });
      return true;
    }
    switch (message.type) {
      case MessageType.merkleRequest:
        this.#exchange.onBranches(from, message);
        return true;
      case MessageType.merkleReply:
        this.#exchange.onLeaves(from, message);
        return true;
      case MessageType.aeSegments:
        this.#repairs.onSegments(from, message);
        return true;
      case MessageType.aeHashes:
        this.#repairs.onHashes(from, message);
        return true;
      case MessageType.aeEntries:
        this.#repairs.onEntries(from, message).catch(ignoreStoreFailure);
        return true;
      case MessageType.aeAck:
        this.#repairs.onAck(from, message);
        return true;
      case MessageType.aePurged:
        this.#tombstones.onPurged(from, message.keys as Uint8Array[]);
        return true;
      default:
        return false;
    }
  }

  // ---- the rest -------------------------------------------------------------------------------

  /** Whether versions are older than the tombstone grace (their newest dot). */
  expired(versions: readonly Version[]): boolean {
    return this.#tombstones.expired(versions);
  }

  /** Each peer's tree root as this node holds it; none while anti-entropy is off (no trees kept). */
  roots(): Record<number, string> {
    if (!this.#enabled) return {};
    return this.#trees.roots();
  }

  stats(): AntiEntropyStats {
    return { ...this.#stats, enabled: this.#enabled, rebuilding: this.#trees.building !== null, sessions: this.#repairs.peers(), tombstonesPending: this.#tombstones.pending, roots: this.roots() };
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#options.clock.clearTimer(this.#timer);
    this.#repairs.clear();
  }
}

/**
 * A store that failed (a disk fault) or closed under a background step: the step is dropped, the
 * next round tries again. Reads of a healthy store do not throw.
 */
function ignoreStoreFailure(): void {}
