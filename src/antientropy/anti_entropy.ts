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
 * Pure over its injected store, transport, clock and scan.
 */
import type { AntiEntropyConfig } from "../cluster/cluster_config.ts";
import type { Clock, TimerHandle } from "../io/clock.ts";
import { keyPosition } from "../ring/hash_ring.ts";
import type { Placement } from "../ring/ring_spec.ts";
import type { RingSpec } from "../ring/ring_spec.ts";
import type { NodeStore } from "../storage/tracked_store.ts";
import type { Version } from "../storage/version_set_format.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import type { Transport } from "../transport/transport.ts";
import { decodeVersion } from "../version/version_codec.ts";
import { itemHash, segmentAt, segmentOf, type Hash64 } from "./item_hash.ts";
import { SegmentTree } from "./segment_tree.ts";
import { deletedAtOf, type TreeBuild, type TreeBuildParams } from "./tree_build.ts";


export interface AntiEntropyStats {
  /** Exchanges this node started; those that found the trees equal; those the peer turned away. */
  readonly exchanges: number;
  readonly agreed: number;
  readonly busy: number;
  /** Segments found different, and keys sent and received while repairing. */
  readonly segmentsDiffering: number;
  readonly keysSent: number;
  readonly keysReceived: number;
  /** Keys a repair changed here (they were missing or stale). */
  readonly keysRepaired: number;
  /** Bytes of trees, hashes and entries this node sent. */
  readonly bytesSent: number;
  /** Whether anti-entropy runs on this node (antiEntropy.enabled). */
  readonly enabled: boolean;
  readonly rebuilds: number;
  readonly rebuilding: boolean;
  /** Leaves found wrong by a scan and set right (should stay 0: a write the trees missed). */
  readonly leavesCorrected: number;
  /** Repair steps in progress, by peer. */
  readonly sessions: readonly number[];
  /** How long the last rebuild took, ms. */
  readonly lastRebuildMs: number;
  /** Keys holding only tombstones, waiting for their grace and their replicas' agreement. */
  readonly tombstonesPending: number;
  readonly tombstonesPurged: number;
  /** Each peer's tree root (equal roots on both sides: converged); empty while anti-entropy is off. */
  readonly roots: Readonly<Record<number, string>>;
}

/**
 * Whether replicas agree: every node's root for each peer equals that peer's root for it, and no
 * node is rebuilding or has anti-entropy off (it keeps no trees to compare). `nodes` maps each
 * running node to its anti-entropy stats.
 */
export function rootsAgree(nodes: ReadonlyMap<number, Pick<AntiEntropyStats, "enabled" | "rebuilding" | "roots">>): boolean {
  for (const stats of nodes.values()) if (stats.rebuilding || !stats.enabled) return false;
  for (const [node, stats] of nodes) {
    for (const [peer, root] of Object.entries(stats.roots)) if (nodes.get(Number(peer))?.roots[node] !== root) return false;
  }
  return true;
}

/** Keys pushed per aeEntries message. */
const ENTRIES_PER_MESSAGE = 128;
/** aeEntries messages a push keeps unacknowledged: the receiver's merges set the pace too. */
const ENTRIES_IN_FLIGHT = 4;
/** Item hashes per aeHashes message. */
const HASHES_PER_MESSAGE = 4096;
/** Keys scanned between two yields of a scan. */
const SCAN_YIELD_KEYS = 1024;
/** How long an exchange waits before it looks again at the segments it found different. */
export function confirmDelayMs(intervalMs: number): number {
  return Math.min(200, Math.max(1, Math.floor(intervalMs / 4)));
}

/**
 * An exchange that has heard nothing for two rounds (at least a second) is dropped: a message was
 * lost. One whose peer went down or restarted is dropped at the next round.
 */
export function sessionIdleMs(intervalMs: number): number {
  return Math.max(1000, 2 * intervalMs);
}

interface Building {
  readonly trees: Map<number, SegmentTree>;
  readonly placement: Placement;
  readonly buckets: number;
}

interface Agreement {
  readonly generation: number;
  readonly times: Float64Array;
}

interface Pending {
  readonly key: Uint8Array;
  /** Newest dot timestamp of its tombstones. */
  readonly deletedAtMs: number;
  /** Wall time this node took the tombstones (or rebuilt its trees over them). */
  readonly notedAtMs: number;
  /** Peers seen to hold the tombstone: when (an agreement on its segment after notedAtMs), in which life. */
  readonly heldBy: Map<number, Sighting>;
  /** Peers that said they hold nothing for the key: when, in which life. */
  readonly absentAt: Map<number, Sighting>;
  /**
   * Since when no hint anywhere may hold an older version (purgeAllowed held at every check since);
   * undefined while it does not. A peer's "nothing" said before then may have been refilled by a
   * hint since, so it does not count.
   */
  allowedSinceMs: number | undefined;
}

interface Sighting {
  readonly atMs: number;
  readonly generation: number;
}

/** One exchange's repair step with one peer (at most one per peer at a time). */
interface Session {
  readonly peer: number;
  readonly exchange: number;
  readonly initiator: boolean;
  /** The peer's generation when the session started. */
  readonly generation: number;
  readonly segments: ReadonlySet<number>;
  readonly buckets: number;
  /** This side's keys of the segments by item hash, once its scan is done. */
  mine: Map<string, Uint8Array> | null;
  readonly theirs: Set<string>;
  theirsDone: boolean;
  activeMs: number;
  /** Entries messages sent and not yet acknowledged (the receiver merged them), and who waits. */
  unacked: number;
  waiter: (() => void) | undefined;
  /** This side pushed everything and had it acknowledged; the peer said it pushed everything. */
  pushed: boolean;
  peerPushed: boolean;
}

export interface AntiEntropyOptions {
  readonly self: number;
  readonly store: NodeStore;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly config: () => AntiEntropyConfig;
  readonly ring: () => RingSpec;
  readonly placement: () => Placement;
  /** Builds trees from a snapshot of the store taken synchronously at the call. */
  readonly scan: (params: TreeBuildParams) => Promise<TreeBuild>;
  /** Merges entries into this node's store (a repair); resolves with how many keys it changed. */
  readonly merge: (entries: readonly { key: Uint8Array; versions: readonly Version[] }[]) => Promise<number>;
  /** Drops `key` if it still holds exactly `versions` (a purge); resolves with whether it did. */
  readonly purge: (key: Uint8Array, versions: readonly Version[]) => Promise<boolean>;
  readonly isUp: (node: number) => boolean;
  /**
   * Whether this node's store still holds what it reports. False once it failed (a disk fault):
   * the write that failed may sit in its memtable, readable and in the trees, though it never
   * reached the log; agreeing on it would let peers purge a tombstone this node has not kept.
   * While false, the node takes no part in exchanges and purges nothing. @default always true
   */
  readonly trusted?: () => boolean;
  /** The peer's current generation as gossip knows it. */
  readonly generationOf: (node: number) => number;
  /** Whether no hint anywhere may hold a version older than a delete at `deletedAtMs`. */
  readonly purgeAllowed: (deletedAtMs: number) => boolean;
}

export class AntiEntropy {
  readonly #options: AntiEntropyOptions;
  #trees = new Map<number, SegmentTree>();
  #placement: Placement;
  /** Per placement, per virtual node: the other replicas of its arc ([] if this node is not one). */
  readonly #peerLists = new WeakMap<Placement, (readonly number[] | undefined)[]>();
  #buckets: number;
  #replicaPeers: number[] = [];
  /** Writes seen, and the count at each segment's last write (a scan knows which leaves moved under it). */
  #writes = 0;
  #lastWriteIn = new Float64Array(0);
  #building: Building | null = null;
  #enabled: boolean;
  #timer: TimerHandle | undefined;
  #stopped = false;
  #nextExchange = 1;
  #peerCursor = 0;
  #purging = false;
  readonly #agreements = new Map<number, Agreement>();
  readonly #tombstones = new Map<string, Pending>();
  readonly #sessions = new Map<number, Session>();
  /** Exchanges this node started and awaits the merkleReply of: exchange → peer, sent at. */
  readonly #open = new Map<number, { peer: number; sentMs: number; sentWallMs: number; candidates?: ReadonlySet<number> }>();
  readonly #stats = {
    exchanges: 0,
    agreed: 0,
    busy: 0,
    segmentsDiffering: 0,
    keysSent: 0,
    keysReceived: 0,
    keysRepaired: 0,
    bytesSent: 0,
    rebuilds: 0,
    leavesCorrected: 0,
    lastRebuildMs: 0,
    tombstonesPurged: 0,
  };

  constructor(options: AntiEntropyOptions) {
    this.#options = options;
    this.#placement = options.placement();
    this.#buckets = options.config().buckets;
    this.#replicaPeers = replicaPeersOf(options.self, this.#placement);
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
    this.#building = null;
    this.#trees = new Map();
    this.#lastWriteIn = new Float64Array(0);
    this.#agreements.clear();
    this.#sessions.clear();
    this.#open.clear();
    this.#tombstones.clear();
  }

  // ---- trees ---------------------------------------------------------------------------------

  /** The other replicas of `key` under `placement`, or [] when this node does not replicate it. */
  #peersOf(key: Uint8Array, placement: Placement): readonly number[] {
    return this.#peersAt(keyPosition(key), placement);
  }

  #peersAt(position: number, placement: Placement): readonly number[] {
    // One list per virtual node, worked out once per placement: every write asks.
    let lists = this.#peerLists.get(placement);
    if (!lists) this.#peerLists.set(placement, (lists = new Array<readonly number[] | undefined>(placement.ring.vnodeCount)));
    const index = placement.ring.vnodeIndexAt(position);
    let peers = lists[index];
    if (peers === undefined) {
      const replicas = placement.ring.preferenceListAt(position, placement.n);
      lists[index] = peers = replicas.includes(this.#options.self) ? replicas.filter((node) => node !== this.#options.self) : [];
    }
    return peers;
  }

  #flip(trees: Map<number, SegmentTree>, placement: Placement, buckets: number, position: number, delta: Hash64): void {
    const segment = segmentAt(position, buckets);
    for (const peer of this.#peersAt(position, placement)) {
      let tree = trees.get(peer);
      if (!tree) trees.set(peer, (tree = new SegmentTree(buckets)));
      tree.flip(segment, delta);
    }
  }

  /** A write landed: `key` went from `before` to `after`. */
  onWrite(key: Uint8Array, before: readonly Version[], after: readonly Version[]): void {
    if (!this.#enabled) return;
    const a = itemHash(key, before);
    const b = itemHash(key, after);
    const delta = { high: (a.high ^ b.high) >>> 0, low: (a.low ^ b.low) >>> 0 };
    if (delta.high !== 0 || delta.low !== 0) {
      const position = keyPosition(key);
      this.#flip(this.#trees, this.#placement, this.#buckets, position, delta);
      if (this.#lastWriteIn.length === this.#buckets) this.#lastWriteIn[segmentAt(position, this.#buckets)] = ++this.#writes;
      const building = this.#building;
      if (building) this.#flip(building.trees, building.placement, building.buckets, position, delta);
    }
    // Only a key that held or now holds nothing but tombstones is (or becomes) a purge candidate.
    const deletedAtMs = deletedAtOf(after);
    if (deletedAtMs === undefined && deletedAtOf(before) === undefined) return;
    const id = hexOf(key);
    if (deletedAtMs === undefined) this.#tombstones.delete(id);
    else this.#tombstones.set(id, { key: key.slice(), deletedAtMs, notedAtMs: this.#options.clock.wallMs(), heldBy: new Map(), absentAt: new Map(), allowedSinceMs: undefined });
  }

  /**
   * Builds every tree anew from a snapshot of the store, the writes landing meanwhile applied on
   * top; exchanges wait until it ends. Called at start, and when the ring or the bucket count
   * changes. Open exchanges are dropped (their segments may mean something else now).
   */
  async rebuild(): Promise<void> {
    const placement = this.#options.placement();
    const buckets = this.#options.config().buckets;
    const building: Building = { trees: new Map(), placement, buckets };
    this.#building = building;
    this.#stats.rebuilds++;
    const startedMs = this.#options.clock.nowMs();
    const notedAtMs = this.#options.clock.wallMs();
    let build: TreeBuild;
    try {
      // The snapshot and the start of double-writing happen in this one synchronous block.
      build = await this.#options.scan({ self: this.#options.self, ring: this.#options.ring(), buckets });
    } catch {
      // The store closed or failed under the scan: keep the old trees; a restart rebuilds.
      if (this.#building === building) this.#building = null;
      return;
    }
    if (this.#stopped || this.#building !== building) return;
    build.peers.forEach((peer, index) => {
      let tree = building.trees.get(peer);
      if (!tree) building.trees.set(peer, (tree = new SegmentTree(buckets)));
      tree.xorLeaves(build.leaves[index]!);
    });
    for (const { key, deletedAtMs } of build.tombstones) {
      const id = hexOf(key);
      if (!this.#tombstones.has(id)) this.#tombstones.set(id, { key, deletedAtMs, notedAtMs, heldBy: new Map(), absentAt: new Map(), allowedSinceMs: undefined });
    }
    this.#trees = building.trees;
    this.#placement = placement;
    this.#buckets = buckets;
    this.#lastWriteIn = new Float64Array(buckets).fill(++this.#writes);
    this.#replicaPeers = replicaPeersOf(this.#options.self, placement);
    this.#agreements.clear();
    this.#sessions.clear();
    this.#open.clear();
    this.#building = null;
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
    if (this.#building) return;
    this.#purgeTombstones().catch(ignoreStoreFailure);
    // One repair at a time per node: a node that two peers repair at once gets everything twice.
    if (this.#sessions.size > 0) return;
    const peers = this.#replicaPeers.filter((node) => this.#options.isUp(node));
    if (peers.length === 0) return;
    this.#stats.exchanges++;
    this.#compare(peers[this.#peerCursor++ % peers.length]!);
  }

  /**
   * Sends `peer` this node's branches for it. With `candidates` (the segments a first comparison
   * found different), only those still different are repaired: a difference that was a write
   * still on its way to one replica is gone by the second look.
   */
  #compare(peer: number, candidates?: ReadonlySet<number>): void {
    const exchange = this.#nextExchange++;
    this.#open.set(exchange, { peer, sentMs: this.#options.clock.nowMs(), sentWallMs: this.#options.clock.wallMs(), ...(candidates ? { candidates } : {}) });
    const branches = this.#tree(peer).branches();
    this.#stats.bytesSent += branches.length * 4;
    this.#options.transport.send(peer, { type: MessageType.merkleRequest, exchange, buckets: this.#buckets, branches });
  }

  #dropIdle(): void {
    const nowMs = this.#options.clock.nowMs();
    for (const [peer, session] of this.#sessions) {
      const gone = !this.#options.isUp(peer) || this.#options.generationOf(peer) !== session.generation;
      if (gone || nowMs - session.activeMs > sessionIdleMs(this.#options.config().intervalMs)) this.#sessions.delete(peer);
    }
    for (const [exchange, open] of this.#open) if (nowMs - open.sentMs > sessionIdleMs(this.#options.config().intervalMs)) this.#open.delete(exchange);
  }

  /** The tree for `peer`, or an empty one when this node holds no key it shares with `peer`. */
  #tree(peer: number): SegmentTree {
    return this.#trees.get(peer) ?? new SegmentTree(this.#buckets);
  }

  /**
   * Records that `peer` held what this node holds in `segments` as of `atMs` (wall time): the
   * moment of this node's state that was compared. Times only rise.
   */
  #agree(peer: number, segments: Iterable<number> | "all", atMs: number): void {
    const generation = this.#options.generationOf(peer);
    let agreement = this.#agreements.get(peer);
    if (!agreement || agreement.generation !== generation || agreement.times.length !== this.#buckets) {
      this.#agreements.set(peer, (agreement = { generation, times: new Float64Array(this.#buckets) }));
    }
    const times = agreement.times;
    if (segments === "all") for (let segment = 0; segment < times.length; segment++) times[segment] = Math.max(times[segment]!, atMs);
    else for (const segment of segments) times[segment] = Math.max(times[segment]!, atMs);
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
        this.#onBranches(from, message);
        return true;
      case MessageType.merkleReply:
        this.#onLeaves(from, message);
        return true;
      case MessageType.aeSegments:
        this.#onSegments(from, message);
        return true;
      case MessageType.aeHashes:
        this.#onHashes(from, message);
        return true;
      case MessageType.aeEntries:
        this.#onEntries(from, message).catch(ignoreStoreFailure);
        return true;
      case MessageType.aeAck:
        this.#onAck(from, message);
        return true;
      case MessageType.aePurged:
        this.#onPurged(from, message.keys as Uint8Array[]);
        return true;
      default:
        return false;
    }
  }

  /** Responder: compare the initiator's branches with ours for it. */
  #onBranches(from: number, message: Message): void {
    const exchange = message.exchange as number;
    if (this.#building || this.#buckets !== message.buckets || this.#sessions.size > 0) {
      this.#options.transport.send(from, { type: MessageType.merkleReply, exchange, busy: true });
      return;
    }
    const tree = this.#tree(from);
    const differing = SegmentTree.differing(tree.branches(), message.branches as number[]);
    if (differing.length === 0) {
      // Our tree now equals the initiator's as it was when sent; it only moves forward since.
      this.#agree(from, "all", this.#options.clock.wallMs());
      this.#options.transport.send(from, { type: MessageType.merkleReply, exchange, agreed: true });
      return;
    }
    const leaves = differing.flatMap((branch) => tree.leavesOf(branch));
    this.#stats.bytesSent += (differing.length + leaves.length) * 4;
    this.#options.transport.send(from, { type: MessageType.merkleReply, exchange, branches: differing, leaves });
  }

  /** Initiator: find the differing segments and start the repair step. */
  #onLeaves(from: number, message: Message): void {
    const exchange = message.exchange as number;
    const open = this.#open.get(exchange);
    if (open?.peer !== from) return;
    this.#open.delete(exchange);
    if (message.busy === true) {
      this.#stats.busy++;
      return;
    }
    if (this.#building) return;
    // The peer compared against our branches as they were when the request left: an agreement
    // on them says nothing of what we took since, so it is dated then, not now.
    if (message.agreed === true) {
      this.#stats.agreed++;
      this.#agree(from, "all", open.sentWallMs);
      return;
    }
    const tree = this.#tree(from);
    const branches = message.branches as number[];
    const theirs = message.leaves as number[];
    // Their leaves come branch after branch, in the order of `branches`.
    const offsetOf = new Map<number, number>();
    let offset = 0;
    for (const branch of branches) {
      offsetOf.set(branch, offset);
      offset += tree.leafCountOf(branch) * 2;
    }
    let differing: number[] = [];
    const agreedWhenSent: number[] = [];
    const agreedNow: number[] = [];
    for (let branch = 0; branch < tree.branchCount; branch++) {
      const start = branch * tree.branchWidth;
      const base = offsetOf.get(branch);
      if (base === undefined) {
        // A branch the peer found equal to ours as sent.
        for (let leaf = 0; leaf < tree.leafCountOf(branch); leaf++) agreedWhenSent.push(start + leaf);
        continue;
      }
      for (let leaf = 0; leaf < tree.leafCountOf(branch); leaf++) {
        const mine = tree.leaf(start + leaf);
        const same = mine.high === theirs[base + leaf * 2] && mine.low === theirs[base + leaf * 2 + 1];
        (same ? agreedNow : differing).push(start + leaf);
      }
    }
    this.#agree(from, agreedWhenSent, open.sentWallMs);
    this.#agree(from, agreedNow, this.#options.clock.wallMs());
    if (differing.length === 0 || this.#sessions.size > 0) return;
    if (open.candidates === undefined) {
      // Look again in a moment: writes replicating right now make differences that vanish.
      const candidates = new Set(differing);
      this.#options.clock.setTimer(confirmDelayMs(this.#options.config().intervalMs), () => {
        if (!this.#stopped && this.#enabled && !this.#building && this.#sessions.size === 0 && this.#options.isUp(from)) this.#compare(from, candidates);
      });
      return;
    }
    differing = differing.filter((segment) => open.candidates!.has(segment));
    if (differing.length === 0) return;
    this.#stats.segmentsDiffering += differing.length;
    this.#stats.bytesSent += differing.length * 4;
    this.#options.transport.send(from, { type: MessageType.aeSegments, exchange, buckets: this.#buckets, segments: differing });
    this.#startSession(from, exchange, true, differing);
  }

  /** Responder: the initiator found `segments` different; scan ours and swap hashes. */
  #onSegments(from: number, message: Message): void {
    const exchange = message.exchange as number;
    const existing = this.#sessions.get(from);
    // Both sides started an exchange with each other at once: the lower id's goes on.
    if (existing?.initiator === true && this.#options.self > from) this.#sessions.delete(from);
    if (this.#building || this.#buckets !== message.buckets || this.#sessions.size > 0) {
      this.#options.transport.send(from, { type: MessageType.aeHashes, exchange, toInitiator: true, busy: true });
      return;
    }
    this.#startSession(from, exchange, false, message.segments as number[]);
  }

  #startSession(peer: number, exchange: number, initiator: boolean, segments: readonly number[]): void {
    const session: Session = {
      peer,
      exchange,
      initiator,
      generation: this.#options.generationOf(peer),
      segments: new Set(segments),
      buckets: this.#buckets,
      mine: null,
      theirs: new Set(),
      theirsDone: false,
      activeMs: this.#options.clock.nowMs(),
      unacked: 0,
      waiter: undefined,
      pushed: false,
      peerPushed: false,
    };
    this.#sessions.set(peer, session);
    this.#scan(session).catch(() => this.#end(session));
  }

  /** Ends `session` if it is still the peer's current one. */
  #end(session: Session): void {
    if (this.#sessions.get(session.peer) === session) this.#sessions.delete(session.peer);
  }

  #live(session: Session): boolean {
    return !this.#stopped && this.#sessions.get(session.peer) === session;
  }

  /** Scans the store for this side's keys of the session's segments and sends their hashes. */
  async #scan(session: Session): Promise<void> {
    const mine = new Map<string, Uint8Array>();
    let chunk = new Uint8Array(HASHES_PER_MESSAGE * 8);
    let count = 0;
    const send = (last: boolean) => {
      const hashes = chunk.slice(0, count * 8);
      this.#stats.bytesSent += hashes.length;
      this.#options.transport.send(session.peer, { type: MessageType.aeHashes, exchange: session.exchange, toInitiator: !session.initiator, hashes, last });
      chunk = new Uint8Array(HASHES_PER_MESSAGE * 8);
      count = 0;
      session.activeMs = this.#options.clock.nowMs();
    };
    let scanned = 0;
    // The leaves of the scanned segments as the snapshot gives them, to check the tree against.
    const leaves = new Map<number, Hash64>();
    const writesBefore = this.#writes;
    for (const entry of this.#options.store.entries()) {
      if (!this.#live(session)) return;
      if (++scanned % SCAN_YIELD_KEYS === 0) {
        session.activeMs = this.#options.clock.nowMs(); // a long scan is not an idle session
        await this.#pause(0);
      }
      const segment = segmentOf(entry.key, session.buckets);
      if (!session.segments.has(segment)) continue;
      if (!this.#peersOf(entry.key, this.#placement).includes(session.peer)) continue;
      const hash = itemHash(entry.key, entry.versions);
      const leaf = leaves.get(segment) ?? { high: 0, low: 0 };
      leaves.set(segment, { high: (leaf.high ^ hash.high) >>> 0, low: (leaf.low ^ hash.low) >>> 0 });
      mine.set(hashId(hash.high, hash.low), entry.key);
      const view = new DataView(chunk.buffer);
      view.setUint32(count * 8, hash.high, true);
      view.setUint32(count * 8 + 4, hash.low, true);
      if (++count === HASHES_PER_MESSAGE) send(false);
    }
    if (!this.#live(session)) return;
    this.#correctLeaves(session, leaves, writesBefore);
    send(true);
    session.mine = mine;
    if (session.theirsDone) this.#push(session).catch(() => this.#end(session));
  }

  /**
   * Sets right the leaves of the session's segments that no write touched since the scan's
   * snapshot and that differ from it: a tree that missed a write would otherwise differ from its
   * peer's for good, and nothing in that segment could ever be purged.
   */
  #correctLeaves(session: Session, leaves: ReadonlyMap<number, Hash64>, writesBefore: number): void {
    if (session.buckets !== this.#buckets || this.#lastWriteIn.length !== this.#buckets) return;
    const tree = this.#trees.get(session.peer);
    for (const segment of session.segments) {
      if (this.#lastWriteIn[segment]! > writesBefore) continue;
      const scanned = leaves.get(segment) ?? { high: 0, low: 0 };
      const kept = tree?.leaf(segment) ?? { high: 0, low: 0 };
      if (scanned.high === kept.high && scanned.low === kept.low) continue;
      let fixed = tree;
      if (!fixed) this.#trees.set(session.peer, (fixed = new SegmentTree(this.#buckets)));
      fixed.flip(segment, { high: (scanned.high ^ kept.high) >>> 0, low: (scanned.low ^ kept.low) >>> 0 });
      this.#stats.leavesCorrected++;
    }
  }

  #onHashes(from: number, message: Message): void {
    const session = this.#sessions.get(from);
    if (!session || session.exchange !== message.exchange || session.initiator !== message.toInitiator) return;
    if (message.busy === true) {
      this.#stats.busy++;
      this.#sessions.delete(from);
      return;
    }
    const hashes = message.hashes as Uint8Array;
    const view = new DataView(hashes.buffer, hashes.byteOffset, hashes.byteLength);
    for (let offset = 0; offset + 8 <= hashes.length; offset += 8) session.theirs.add(hashId(view.getUint32(offset, true), view.getUint32(offset + 4, true)));
    session.activeMs = this.#options.clock.nowMs();
    if (message.last === true) {
      session.theirsDone = true;
      if (session.mine) this.#push(session).catch(() => this.#end(session));
    }
  }

  /**
   * Sends the peer this side's entries whose hash it lacks, paced to keysPerSecond and to the
   * peer's merges (at most ENTRIES_IN_FLIGHT messages unacknowledged); the last message says so.
   * The session ends once both sides pushed everything and had it acknowledged, so neither starts
   * another repair while entries of this one are still on their way.
   */
  async #push(session: Session): Promise<void> {
    const keys: Uint8Array[] = [];
    for (const [id, key] of session.mine!) if (!session.theirs.has(id)) keys.push(key);
    const startedMs = this.#options.clock.nowMs();
    let sent = 0;
    let index = 0;
    do {
      if (!this.#live(session)) return;
      const entries: { key: Uint8Array; versions: Version[] }[] = [];
      for (const key of keys.slice(index, index + ENTRIES_PER_MESSAGE)) {
        const versions = this.#options.store.get(key);
        if (versions.length === 0) continue;
        entries.push({ key, versions });
        this.#stats.bytesSent += entryBytes(key, versions);
      }
      index += ENTRIES_PER_MESSAGE;
      const last = index >= keys.length;
      this.#options.transport.send(session.peer, { type: MessageType.aeEntries, exchange: session.exchange, toInitiator: !session.initiator, entries, last });
      session.unacked++;
      this.#stats.keysSent += entries.length;
      sent += entries.length;
      session.activeMs = this.#options.clock.nowMs();
      while (session.unacked >= ENTRIES_IN_FLIGHT && this.#live(session)) await this.#acked(session);
      if (!last) await this.#pause(startedMs + (sent / this.#options.config().keysPerSecond) * 1000 - this.#options.clock.nowMs());
    } while (index < keys.length);
    while (session.unacked > 0 && this.#live(session)) await this.#acked(session);
    session.pushed = true;
    if (session.peerPushed) this.#end(session);
  }

  /** Resolves at the session's next acknowledgement, or after sessionIdleMs (the caller re-checks). */
  #acked(session: Session): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#options.clock.setTimer(sessionIdleMs(this.#options.config().intervalMs), () => {
        session.waiter = undefined;
        resolve();
      });
      session.waiter = () => {
        this.#options.clock.clearTimer(timer);
        session.waiter = undefined;
        resolve();
      };
    });
  }

  /** The session (of the role the message names) this message of `from` belongs to, if current. */
  #sessionFor(from: number, message: Message): Session | undefined {
    const session = this.#sessions.get(from);
    if (!session || session.exchange !== message.exchange || session.initiator !== message.toInitiator) return undefined;
    return session;
  }

  #onAck(from: number, message: Message): void {
    const session = this.#sessionFor(from, message);
    if (!session) return;
    session.unacked = Math.max(0, session.unacked - 1);
    session.activeMs = this.#options.clock.nowMs();
    session.waiter?.();
  }

  /**
   * Merges a pushed message of entries, then acknowledges it (the pusher paces on that). The last
   * message of the peer's push marks its side of the session done.
   */
  async #onEntries(from: number, message: Message): Promise<void> {
    const entries = message.entries as readonly { key: Uint8Array; versions: readonly Version[] }[];
    this.#stats.keysReceived += entries.length;
    if (this.#stopped) return;
    const absent: Uint8Array[] = [];
    const merging = entries.filter((entry) => {
      // A key this node does not replicate (the sender's ring differs for a moment) is not taken:
      // a copy outside the replica set is one no purge would ever wait for.
      if (this.#peersOf(entry.key, this.#placement).length === 0) return false;
      // Tombstones past their grace for a key this node holds nothing of: nothing here to delete,
      // so they are not stored again; the sender learns it may purge them.
      const gone = deletedAtOf(entry.versions) !== undefined && this.expired(entry.versions) && this.#options.store.get(entry.key).length === 0;
      if (gone) absent.push(entry.key);
      return !gone;
    });
    if (absent.length > 0) this.#options.transport.send(from, { type: MessageType.aePurged, keys: absent });
    try {
      // Not `+= await`: that reads the counter before the await, and merges run side by side.
      const changed = merging.length > 0 ? await this.#options.merge(merging) : 0;
      this.#stats.keysRepaired += changed;
    } catch {
      // the store refused (a disk fault, closing): the next exchange repairs it again
    }
    this.#options.transport.send(from, { type: MessageType.aeAck, exchange: message.exchange, toInitiator: !message.toInitiator });
    const session = this.#sessionFor(from, message);
    if (!session) return;
    session.activeMs = this.#options.clock.nowMs();
    if (message.last === true) {
      session.peerPushed = true;
      if (session.pushed) this.#end(session);
    }
  }


  #onPurged(from: number, keys: readonly Uint8Array[]): void {
    const sighting = { atMs: this.#options.clock.wallMs(), generation: this.#options.generationOf(from) };
    for (const key of keys) this.#tombstones.get(hexOf(key))?.absentAt.set(from, sighting);
  }

  // ---- tombstones ----------------------------------------------------------------------------

  #agreedSince(peer: number, segment: number, sinceMs: number): boolean {
    const agreement = this.#agreements.get(peer);
    if (!agreement || agreement.generation !== this.#options.generationOf(peer)) return false;
    return agreement.times.length === this.#buckets && agreement.times[segment]! > sinceMs;
  }

  /**
   * Whether every other replica of a pending tombstone's key holds it, or holds nothing for it.
   * A peer holds it once it agreed on the key's segment after this node took the tombstone (the
   * first such sighting is kept). A peer that said it holds nothing counts only if it said so after
   * every other peer was seen holding the tombstone: from then on no replica holds an older value
   * without the tombstone, so nothing can refill the empty peer with one. Sightings from an
   * earlier life of a peer do not count (a restart may have lost what it held in memory).
   */
  #heldEverywhere(pending: Pending, segment: number): boolean {
    let heldSinceMs = 0;
    const absent: Sighting[] = [];
    for (const peer of this.#peersOf(pending.key, this.#placement)) {
      const generation = this.#options.generationOf(peer);
      let held = pending.heldBy.get(peer);
      if (held && held.generation !== generation) {
        pending.heldBy.delete(peer);
        held = undefined;
      }
      if (!held && this.#agreedSince(peer, segment, pending.notedAtMs)) {
        held = { atMs: this.#agreements.get(peer)!.times[segment]!, generation };
        pending.heldBy.set(peer, held);
      }
      if (held) {
        heldSinceMs = Math.max(heldSinceMs, held.atMs);
        continue;
      }
      const gone = pending.absentAt.get(peer);
      if (!gone || gone.generation !== generation) return false;
      absent.push(gone);
    }
    const since = Math.max(heldSinceMs, pending.allowedSinceMs ?? Number.POSITIVE_INFINITY);
    return absent.every((gone) => gone.atMs > since);
  }

  /** Purges the tombstone-only keys past their grace that every other replica holds. */
  async #purgeTombstones(): Promise<void> {
    if (this.#purging) return;
    this.#purging = true;
    try {
      const { tombstoneGraceMs } = this.#options.config();
      const nowMs = this.#options.clock.wallMs();
      for (const [id, pending] of [...this.#tombstones]) {
        if (this.#stopped || this.#building) return;
        if (!this.#options.purgeAllowed(pending.deletedAtMs)) {
          pending.allowedSinceMs = undefined;
          continue;
        }
        pending.allowedSinceMs ??= nowMs;
        if (nowMs - pending.deletedAtMs < tombstoneGraceMs) continue;
        const segment = segmentOf(pending.key, this.#buckets);
        if (!this.#heldEverywhere(pending, segment)) continue;
        const versions = this.#options.store.get(pending.key);
        if (deletedAtOf(versions) === undefined) {
          this.#tombstones.delete(id);
          continue;
        }
        try {
          if (await this.#options.purge(pending.key, versions)) this.#stats.tombstonesPurged++;
        } catch {
          return; // the store refuses writes: try again next round
        }
      }
    } finally {
      this.#purging = false;
    }
  }

  /** Whether versions are older than the tombstone grace (their newest dot). */
  expired(versions: readonly Version[]): boolean {
    if (versions.length === 0) return false;
    let newestMs = 0;
    for (const version of versions) newestMs = Math.max(newestMs, decodeVersion(version.version).dot.timestampMs);
    return this.#options.clock.wallMs() - newestMs > this.#options.config().tombstoneGraceMs;
  }

  // ---- the rest -------------------------------------------------------------------------------

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => this.#options.clock.setTimer(Math.max(0, ms), resolve));
  }

  /** Each peer's tree root as this node holds it; none while anti-entropy is off (no trees kept). */
  roots(): Record<number, string> {
    const roots: Record<number, string> = {};
    if (!this.#enabled) return roots;
    for (const peer of this.#replicaPeers) roots[peer] = this.#tree(peer).root();
    return roots;
  }

  stats(): AntiEntropyStats {
    return { ...this.#stats, enabled: this.#enabled, rebuilding: this.#building !== null, sessions: [...this.#sessions.keys()], tombstonesPending: this.#tombstones.size, roots: this.roots() };
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#options.clock.clearTimer(this.#timer);
    this.#sessions.clear();
  }
}

/** The nodes that share at least one replica range with `self`, ascending. */
function replicaPeersOf(self: number, placement: Placement): number[] {
  if (!placement.ring.has(self)) return [];
  const peers = new Set<number>();
  for (const { replicas } of placement.ring.replicaRanges(placement.n)) {
    if (replicas.includes(self)) for (const node of replicas) if (node !== self) peers.add(node);
  }
  return [...peers].sort((a, b) => a - b);
}

/**
 * A store that failed (a disk fault) or closed under a background step: the step is dropped, the
 * next round tries again. Reads of a healthy store do not throw.
 */
function ignoreStoreFailure(): void {}

function entryBytes(key: Uint8Array, versions: readonly Version[]): number {
  let bytes = key.length;
  for (const version of versions) bytes += version.version.length + (version.value?.length ?? 0);
  return bytes;
}

function hashId(high: number, low: number): string {
  return `${high.toString(36)}.${low.toString(36)}`;
}

function hexOf(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}
