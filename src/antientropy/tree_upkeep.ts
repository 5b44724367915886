/**
 * A node's Merkle trees, one per peer it shares keys with, over exactly the keys both replicate
 * under the current placement (docs/anti-entropy.md). Every write flips the trees of the key's
 * other replicas by XOR, and those of a rebuild under way as well; a rebuild's trees replace these
 * once its scan is in (the caller drives it); a repair's scan sets right a leaf no write explains.
 * Knows which peers replicate a key (worked out once per virtual node and placement), and which
 * peers share any range with this node. Pure, in memory.
 */
import { keyPosition } from "../ring/hash_ring.ts";
import type { Placement } from "../ring/ring_spec.ts";
import type { Version } from "../storage/version_set_format.ts";
import type { AntiEntropyCounters } from "./anti_entropy_stats.ts";
import { itemHash, segmentAt, type Hash64 } from "./item_hash.ts";
import { SegmentTree } from "./segment_tree.ts";
import type { TreeBuild } from "./tree_build.ts";

/** A rebuild under way: the trees it fills, for the placement and bucket count it was started for. */
export interface Building {
  readonly trees: Map<number, SegmentTree>;
  readonly placement: Placement;
  readonly buckets: number;
}

/** The segments a repair scanned for `peer`, under the bucket count it started with. */
export interface ScannedSegments {
  readonly peer: number;
  readonly segments: ReadonlySet<number>;
  readonly buckets: number;
}

export class TreeUpkeep {
  readonly #self: number;
  readonly #stats: AntiEntropyCounters;
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
  /** What `tree` returns for a peer without one (never flipped). */
  #empty: SegmentTree | undefined;

  constructor(self: number, placement: Placement, buckets: number, stats: AntiEntropyCounters) {
    this.#self = self;
    this.#stats = stats;
    this.#placement = placement;
    this.#buckets = buckets;
    this.#replicaPeers = replicaPeersOf(self, this.#placement);
  }

  get buckets(): number {
    return this.#buckets;
  }

  /** The rebuild under way, if any. */
  get building(): Building | null {
    return this.#building;
  }

  /** Writes seen so far (a scan compares it with each segment's last write). */
  get writes(): number {
    return this.#writes;
  }

  /** The nodes that share at least one replica range with this node, ascending. */
  get replicaPeers(): readonly number[] {
    return this.#replicaPeers;
  }

  /** Anti-entropy switched off: the trees, and any rebuild under way, go. */
  clear(): void {
    this.#building = null;
    this.#trees = new Map();
    this.#lastWriteIn = new Float64Array(0);
  }

  /** The other replicas of `key` under the current placement, or [] when this node does not replicate it. */
  peersOf(key: Uint8Array): readonly number[] {
    return this.#peersAt(keyPosition(key), this.#placement);
  }

  #peersAt(position: number, placement: Placement): readonly number[] {
    // One list per virtual node, worked out once per placement: every write asks.
    let lists = this.#peerLists.get(placement);
    if (!lists) this.#peerLists.set(placement, (lists = new Array<readonly number[] | undefined>(placement.ring.vnodeCount)));
    const index = placement.ring.vnodeIndexAt(position);
    let peers = lists[index];
    if (peers === undefined) {
      const replicas = placement.ring.preferenceListAt(position, placement.n);
      lists[index] = peers = replicas.includes(this.#self) ? replicas.filter((node) => node !== this.#self) : [];
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

  /** A write landed: `key` went from `before` to `after`; its replicas' trees move by the difference. */
  onWrite(key: Uint8Array, before: readonly Version[], after: readonly Version[]): void {
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
  }

  // ---- rebuilds: begin, (scan), fill, adopt, finish ------------------------------------------

  /** Starts a rebuild for `placement` and `buckets`; writes flip its trees too from now on. */
  begin(placement: Placement, buckets: number): Building {
    const building: Building = { trees: new Map(), placement, buckets };
    this.#building = building;
    return building;
  }

  /** Whether `building` is still the rebuild under way (none replaced or dropped it). */
  isBuilding(building: Building): boolean {
    return this.#building === building;
  }

  /** Drops `building` if it is still the one under way (its scan failed). */
  abandon(building: Building): void {
    if (this.#building === building) this.#building = null;
  }

  /** Adds the scan's leaves to the rebuild's trees (which hold the writes since the snapshot). */
  fill(building: Building, build: TreeBuild): void {
    build.peers.forEach((peer, index) => {
      let tree = building.trees.get(peer);
      if (!tree) building.trees.set(peer, (tree = new SegmentTree(building.buckets)));
      tree.xorLeaves(build.leaves[index]!);
    });
  }

  /** The rebuild's trees, placement and bucket count become the node's. */
  adopt(building: Building): void {
    this.#trees = building.trees;
    this.#placement = building.placement;
    this.#buckets = building.buckets;
    this.#lastWriteIn = new Float64Array(building.buckets).fill(++this.#writes);
    this.#replicaPeers = replicaPeersOf(this.#self, building.placement);
  }

  /** The rebuild is over. */
  finish(): void {
    this.#building = null;
  }

  // ---- reading and correcting ------------------------------------------------------------------

  /**
   * The tree for `peer`, or an empty one when this node holds no key it shares with `peer`: one
   * kept for the current bucket count, read and never written (every flip goes to a tree in the map).
   */
  tree(peer: number): SegmentTree {
    const tree = this.#trees.get(peer);
    if (tree !== undefined) return tree;
    if (this.#empty?.buckets !== this.#buckets) this.#empty = new SegmentTree(this.#buckets);
    return this.#empty;
  }

  /** Each replica peer's tree root as this node holds it. */
  roots(): Record<number, string> {
    const roots: Record<number, string> = {};
    for (const peer of this.#replicaPeers) roots[peer] = this.tree(peer).root();
    return roots;
  }

  /**
   * Sets right the leaves of the session's segments that no write touched since the scan's
   * snapshot and that differ from it: a tree that missed a write would otherwise differ from its
   * peer's for good, and nothing in that segment could ever be purged.
   */
  correctLeaves(session: ScannedSegments, leaves: ReadonlyMap<number, Hash64>, writesBefore: number): void {
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
}

/** The nodes that share at least one replica range with `self`, ascending. */
function replicaPeersOf(self: number, placement: Placement): number[] {
  return [...placement.ring.replicaPeers(self, placement.n)];
}
