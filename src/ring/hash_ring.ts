/**
 * The consistent-hashing ring: physical nodes own virtual nodes (tokens) on a circle of 2^53
 * positions; a key belongs to the first token at or after its position, walking clockwise, and its
 * preference list is the first N distinct physical nodes met on that walk (Dynamo section 4.3).
 *
 * A HashRing is an immutable value: build a new one per membership or vnode change, and plan the
 * data movement between two rings with `planTransfer` (src/ringchange/transfer_plan.ts). Pure: no IO, no clock, no
 * randomness; the same nodes and vnode count give the same ring on every runtime.
 *
 * Token ranges: a range covers the positions p with `startExclusive < p <= endInclusive`; when
 * `startExclusive >= endInclusive` it wraps past the top of the ring (p > start or p <= end), and
 * `startExclusive === endInclusive` is the whole ring.
 */
import { assert } from "../util/assert.ts";
import { utf8Encode } from "../util/bytes.ts";
import { describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";

/** Number of positions on the ring: positions are integers in [0, RING_SIZE), exact in a double. */
export const RING_SIZE = 2 ** 53;

/** Ring bounds, from util/limits.ts (the reasons are documented there). */
export const ringLimits = {
  vnodesPerNodeMax: limits.vnodesPerNodeMax,
  nodesMax: limits.nodesMax,
  nodeIdMax: limits.nodeIdMax,
} as const;

/** The JSON format tag; bump it if the token hash or the token names ever change. */
const RING_FORMAT = "loomkv.ring/1";

export interface TokenRange {
  readonly startExclusive: number;
  readonly endInclusive: number;
}

/** One virtual node: its token (ring position), its physical node, and its index on that node. */
export interface VirtualNode {
  readonly token: number;
  readonly node: number;
  readonly index: number;
}

/** A range in which the preference list is constant, with that list (preference order). */
export interface ReplicaRange {
  readonly range: TokenRange;
  readonly replicas: readonly number[];
}

export interface HashRingOptions {
  /** Physical node ids: distinct integers in 0..2^32-1, in any order (the ring sorts them). */
  readonly nodes: readonly number[];
  /** Tokens per physical node, 1..ringLimits.vnodesPerNodeMax. */
  readonly vnodesPerNode: number;
}

/** What `toJSON` returns and `fromJSON` accepts. */
export interface HashRingJson {
  readonly format: typeof RING_FORMAT;
  readonly nodes: readonly number[];
  readonly vnodesPerNode: number;
  /** Hex digest of the sorted tokens: catches a hash change between writer and reader. */
  readonly tokenDigest: string;
}

// murmur3 x86 constants: lane 1 uses the 32-bit variant's, lane 2 the 128-bit variant's second lane.
const LANE1_K1 = 0xcc9e2d51;
const LANE1_K2 = 0x1b873593;
const LANE2_K1 = 0xab0e9789;
const LANE2_K2 = 0x38b34ae5;
const LANE1_SEED = 0x9747b28c;
const LANE2_SEED = 0x2f0a3e61;

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

/** murmur3's finalizer: a bijection on 32-bit integers with full avalanche. */
function finalMix(value: number): number {
  let x = value;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return x ^ (x >>> 16);
}

/**
 * The ring position of a byte string: a two-lane murmur3-style hash (4-byte blocks, each block
 * mixed into both lanes with different constants, lanes cross-mixed at the end as murmur3 x86_128
 * does), 32 bits of lane 1 then 21 bits of lane 2. Allocation-free. Tokens and keys use the same hash.
 */
export function hashPosition(bytes: Uint8Array): number {
  let h1 = LANE1_SEED | 0;
  let h2 = LANE2_SEED | 0;
  const length = bytes.length;
  const blockEnd = length - (length & 3);
  let i = 0;
  for (; i < blockEnd; i += 4) {
    const block = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    h1 ^= Math.imul(rotateLeft(Math.imul(block, LANE1_K1), 15), LANE1_K2);
    h1 = (Math.imul(rotateLeft(h1, 13), 5) + 0xe6546b64) | 0;
    h2 ^= Math.imul(rotateLeft(Math.imul(block, LANE2_K1), 16), LANE2_K2);
    h2 = (Math.imul((rotateLeft(h2, 17) + h1) | 0, 5) + 0x0bcaa747) | 0;
  }
  if (i < length) {
    let block = bytes[i]!;
    if (i + 1 < length) block |= bytes[i + 1]! << 8;
    if (i + 2 < length) block |= bytes[i + 2]! << 16;
    h1 ^= Math.imul(rotateLeft(Math.imul(block, LANE1_K1), 15), LANE1_K2);
    h2 ^= Math.imul(rotateLeft(Math.imul(block, LANE2_K1), 16), LANE2_K2);
  }
  h1 ^= length;
  h2 ^= length;
  h1 = (h1 + h2) | 0;
  h2 = (h2 + h1) | 0;
  h1 = finalMix(h1);
  h2 = finalMix(h2);
  h1 = (h1 + h2) | 0;
  h2 = (h2 + h1) | 0;
  return (h1 >>> 0) * 2 ** 21 + (h2 >>> 11);
}

/** The ring position of a key (validated); the same position `preferenceList` starts from. */
export function keyPosition(key: Uint8Array): number {
  if (!(key instanceof Uint8Array)) {
    throw new LoomTypeError(`key position failed: key is ${describe(key)}, must be a Uint8Array`);
  }
  return hashPosition(key);
}

/** True if `position` lies in `range` (see the module comment for the wrap rule). */
export function rangeContains(range: TokenRange, position: number): boolean {
  const { startExclusive: start, endInclusive: end } = range;
  if (start < end) return position > start && position <= end;
  return position > start || position <= end;
}

/** Number of positions in `range` (RING_SIZE for the whole ring). */
export function rangeSize(range: TokenRange): number {
  const { startExclusive: start, endInclusive: end } = range;
  return end > start ? end - start : RING_SIZE - start + end;
}

/**
 * Merges a circle of intervals into runs of equal labels. Interval k is
 * (ends[k-1], ends[k]], interval 0 being the wrapping (ends[last], ends[0]].
 * REQUIRES: ends strictly ascending, not empty; labels.length === ends.length.
 * Returns the runs ordered by `endInclusive` (a wrapping run first); one run whose range is the
 * whole ring if every label is the same.
 */
export function circularRuns<T>(
  ends: ArrayLike<number>,
  labels: readonly T[],
  same: (a: T, b: T) => boolean,
): { range: TokenRange; label: T }[] {
  const count = ends.length;
  assert(count > 0 && labels.length === count, "circular runs: ends and labels must match and not be empty");
  let first = -1; // an interval whose label differs from its predecessor's: a run starts there
  for (let k = 0; k < count && first < 0; k++) {
    if (!same(labels[k]!, labels[(k + count - 1) % count]!)) first = k;
  }
  if (first < 0) {
    const top = ends[count - 1]!;
    return [{ range: { startExclusive: top, endInclusive: top }, label: labels[0]! }];
  }
  const runs: { range: TokenRange; label: T }[] = [];
  let runStart = first;
  for (let step = 1; step <= count; step++) {
    const k = (first + step) % count;
    if (step === count || !same(labels[k]!, labels[runStart]!)) {
      const startExclusive = ends[(runStart + count - 1) % count]!;
      const endInclusive = ends[(first + step - 1) % count]!;
      runs.push({ range: { startExclusive, endInclusive }, label: labels[runStart]! });
      runStart = k;
    }
  }
  runs.sort((a, b) => a.range.endInclusive - b.range.endInclusive);
  return runs;
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function validateReplicaCount(action: string, n: unknown): void {
  if (typeof n !== "number" || !Number.isInteger(n)) {
    throw new LoomTypeError(`${action} failed: n is ${describe(n)}, must be an integer`);
  }
  if (n < 1) throw new LoomRangeError(`${action} failed: n is ${n}, must be at least 1`);
}

function validateOptions(options: HashRingOptions): number[] {
  if (typeof options !== "object" || options === null) {
    throw new LoomTypeError(`build ring failed: options is ${describe(options)}, must be an object`);
  }
  const { nodes, vnodesPerNode } = options;
  if (typeof vnodesPerNode !== "number" || !Number.isInteger(vnodesPerNode)) {
    throw new LoomTypeError(`build ring failed: vnodesPerNode is ${describe(vnodesPerNode)}, must be an integer`);
  }
  if (vnodesPerNode < 1 || vnodesPerNode > ringLimits.vnodesPerNodeMax) {
    throw new LoomRangeError(
      `build ring failed: vnodesPerNode is ${vnodesPerNode}, must be in 1..${ringLimits.vnodesPerNodeMax}`,
    );
  }
  if (!Array.isArray(nodes)) {
    throw new LoomTypeError(`build ring failed: nodes is ${describe(nodes)}, must be an array of node ids`);
  }
  if (nodes.length === 0 || nodes.length > ringLimits.nodesMax) {
    throw new LoomRangeError(`build ring failed: ring has ${nodes.length} nodes, must have 1..${ringLimits.nodesMax}`);
  }
  const seen = new Set<number>();
  for (const node of nodes as readonly unknown[]) {
    if (typeof node !== "number" || !Number.isInteger(node) || node < 0 || node > ringLimits.nodeIdMax) {
      throw new LoomTypeError(`build ring failed: node id ${describe(node)} must be an integer in 0..${ringLimits.nodeIdMax}`);
    }
    if (seen.has(node)) throw new LoomTypeError(`build ring failed: node id ${node} appears more than once`);
    seen.add(node);
  }
  return [...seen].sort((a, b) => a - b);
}

/** Hex digest of the tokens (little-endian doubles), 14 hex digits. */
function digestTokens(tokens: Float64Array): string {
  const bytes = new Uint8Array(tokens.length * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < tokens.length; i++) view.setFloat64(i * 8, tokens[i]!, true);
  return hashPosition(bytes).toString(16).padStart(14, "0");
}

/**
 * Everything a ring is, apart from its preference-walk scratch: a pure function of the sorted node
 * ids and the vnode count, never written after it is made (but for memos of answers that are
 * themselves pure functions of it), so every HashRing built for the same two shares one (see
 * `layoutOf`).
 */
interface RingLayout {
  readonly nodes: readonly number[];
  readonly vnodesPerNode: number;
  /** Per slot (vnode in ring order): its token, ascending; ties ordered by node id, then index. */
  readonly tokens: Float64Array;
  /** Per slot: the member index of its physical node. */
  readonly slotMembers: Uint16Array;
  /** Per slot: the vnode's index on its node. */
  readonly slotIndexes: Uint16Array;
  readonly bucketStarts: Uint32Array;
  readonly bucketWidth: number;
  /** `replicaPeers` answers, by "node:n" (worked out once, then only read). */
  readonly replicaPeers: Map<string, readonly number[]>;
}

/**
 * Layouts built lately, by "vnodesPerNode:node,node,...": a node rebuilds the ring it is told of
 * at every start, settings change, tree build and key stream, nearly always one it built before.
 * Bounded; the oldest entry goes first.
 */
const layoutCache = new Map<string, RingLayout>();
const LAYOUT_CACHE_ENTRIES_MAX = 16;

/** REQUIRES: `nodes` sorted, distinct and valid; `vnodesPerNode` valid (validateOptions). */
function layoutOf(nodes: readonly number[], vnodesPerNode: number): RingLayout {
  const key = `${vnodesPerNode}:${nodes.join(",")}`;
  let layout = layoutCache.get(key);
  if (layout === undefined) {
    layout = buildLayout(nodes, vnodesPerNode);
    if (layoutCache.size >= LAYOUT_CACHE_ENTRIES_MAX) layoutCache.delete(layoutCache.keys().next().value!);
    layoutCache.set(key, layout);
  }
  return layout;
}

function buildLayout(sortedNodes: readonly number[], vnodesPerNode: number): RingLayout {
  const nodes = Object.freeze([...sortedNodes]);
  const slotCount = nodes.length * vnodesPerNode;
  const rawTokens = new Float64Array(slotCount);
  for (let member = 0; member < nodes.length; member++) {
    for (let index = 0; index < vnodesPerNode; index++) {
      rawTokens[member * vnodesPerNode + index] = hashPosition(utf8Encode(`${nodes[member]!}#${index}`));
    }
  }
  // Slot s holds vnode (member, index) with s' = member * vnodesPerNode + index; sorting by token,
  // then by s' (= by node id, then index, since members are in id order) breaks ties.
  const order = Array.from({ length: slotCount }, (_, s) => s);
  order.sort((a, b) => rawTokens[a]! - rawTokens[b]! || a - b);
  const tokens = new Float64Array(slotCount);
  const slotMembers = new Uint16Array(slotCount);
  const slotIndexes = new Uint16Array(slotCount);
  for (let slot = 0; slot < slotCount; slot++) {
    const raw = order[slot]!;
    tokens[slot] = rawTokens[raw]!;
    slotMembers[slot] = Math.floor(raw / vnodesPerNode);
    slotIndexes[slot] = raw % vnodesPerNode;
  }
  // About two buckets per token, a power of two so that the bucket of a position is exact.
  const bucketCount = 2 ** Math.ceil(Math.log2(slotCount * 2));
  const bucketWidth = RING_SIZE / bucketCount;
  const bucketStarts = new Uint32Array(bucketCount + 1);
  let slot = 0;
  for (let bucket = 0; bucket <= bucketCount; bucket++) {
    const lowest = bucket * bucketWidth;
    while (slot < slotCount && tokens[slot]! < lowest) slot++;
    bucketStarts[bucket] = slot;
  }
  return { nodes, vnodesPerNode, tokens, slotMembers, slotIndexes, bucketStarts, bucketWidth, replicaPeers: new Map() };
}

export class HashRing {
  /** Sorted distinct physical node ids; a member index is a position in this array. */
  readonly #nodes: readonly number[];
  readonly #vnodesPerNode: number;
  /** Per slot (vnode in ring order): its token, ascending; ties ordered by node id, then index. */
  readonly #tokens: Float64Array;
  /** Per slot: the member index of its physical node. */
  readonly #slotMembers: Uint16Array;
  /** Per slot: the vnode's index on its node. */
  readonly #slotIndexes: Uint16Array;
  /**
   * Search accelerator: bucket b (the top #bucketBits bits of a position) → the first slot whose
   * token is >= the bucket's lowest position; entry `buckets` is the slot count. A lookup then
   * binary-searches only between two neighbouring entries (about two tokens).
   */
  readonly #bucketStarts: Uint32Array;
  readonly #bucketWidth: number;
  /** Scratch for preference walks: member index → epoch in which it was last chosen. */
  readonly #chosenEpoch: Uint32Array;
  #epoch = 0;
  readonly #layout: RingLayout;

  private constructor(layout: RingLayout) {
    this.#layout = layout;
    this.#nodes = layout.nodes;
    this.#vnodesPerNode = layout.vnodesPerNode;
    this.#tokens = layout.tokens;
    this.#slotMembers = layout.slotMembers;
    this.#slotIndexes = layout.slotIndexes;
    this.#bucketStarts = layout.bucketStarts;
    this.#bucketWidth = layout.bucketWidth;
    this.#chosenEpoch = new Uint32Array(layout.nodes.length);
  }

  /** Builds the ring for `nodes` with `vnodesPerNode` tokens each. Throws LoomTypeError/LoomRangeError on bad options. */
  static build(options: HashRingOptions): HashRing {
    const nodes = validateOptions(options);
    return new HashRing(layoutOf(nodes, options.vnodesPerNode));
  }

  /** Rebuilds a ring from `toJSON()` output (already parsed). Refuses a malformed value or a token digest mismatch. */
  static fromJSON(value: unknown): HashRing {
    if (typeof value !== "object" || value === null) {
      throw new LoomTypeError(`ring from json failed: value is ${describe(value)}, must be an object`);
    }
    const record = value as Record<string, unknown>;
    if (record["format"] !== RING_FORMAT) {
      throw new LoomTypeError(`ring from json failed: format is ${describe(record["format"])}, expected "${RING_FORMAT}"`);
    }
    const ring = HashRing.build({
      nodes: record["nodes"] as readonly number[],
      vnodesPerNode: record["vnodesPerNode"] as number,
    });
    const digest = digestTokens(ring.#tokens);
    if (record["tokenDigest"] !== digest) {
      throw new LoomTypeError(
        `ring from json failed: tokenDigest is ${describe(record["tokenDigest"])}, the rebuilt ring's is "${digest}" (was it written with another token hash?)`,
      );
    }
    return ring;
  }

  toJSON(): HashRingJson {
    return {
      format: RING_FORMAT,
      nodes: [...this.#nodes],
      vnodesPerNode: this.#vnodesPerNode,
      tokenDigest: digestTokens(this.#tokens),
    };
  }

  /** Physical node ids, ascending. */
  get nodes(): readonly number[] {
    return this.#nodes;
  }

  get vnodesPerNode(): number {
    return this.#vnodesPerNode;
  }

  /** Total number of virtual nodes (tokens) on the ring. */
  get vnodeCount(): number {
    return this.#tokens.length;
  }

  /** Every virtual node in ring order (a fresh array; for inspection and tests, not hot paths). */
  tokens(): VirtualNode[] {
    return Array.from({ length: this.#tokens.length }, (_, slot) => ({
      token: this.#tokens[slot]!,
      node: this.#nodes[this.#slotMembers[slot]!]!,
      index: this.#slotIndexes[slot]!,
    }));
  }

  /** True if `node` is a physical node of this ring. */
  has(node: number): boolean {
    return this.#memberIndex(node) >= 0;
  }

  /**
   * The first min(n, nodes) distinct physical nodes clockwise from the key's position: the key's
   * replicas, coordinator first. Returns a fresh array the caller owns.
   */
  preferenceList(key: Uint8Array, n: number): number[] {
    if (!(key instanceof Uint8Array)) {
      throw new LoomTypeError(`preference list failed: key is ${describe(key)}, must be a Uint8Array`);
    }
    validateReplicaCount("preference list", n);
    return this.#walk(this.#slotAt(hashPosition(key)), n);
  }

  /** `preferenceList` for a ring position (from `keyPosition`) instead of a key. */
  preferenceListAt(position: number, n: number): number[] {
    this.#validatePosition("preference list", position);
    validateReplicaCount("preference list", n);
    return this.#walk(this.#slotAt(position), n);
  }

  /**
   * The index (0..vnodeCount-1) of the virtual node whose arc holds `position`: positions with the
   * same index have the same preference list, so callers may cache per index.
   */
  vnodeIndexAt(position: number): number {
    this.#validatePosition("vnode index", position);
    return this.#slotAt(position);
  }

  /** The key's primary owner: the first node of its preference list. */
  ownerOf(key: Uint8Array): number {
    if (!(key instanceof Uint8Array)) {
      throw new LoomTypeError(`owner of failed: key is ${describe(key)}, must be a Uint8Array`);
    }
    return this.#nodes[this.#slotMembers[this.#slotAt(hashPosition(key))]!]!;
  }

  /** `ownerOf` for a ring position. */
  ownerAt(position: number): number {
    this.#validatePosition("owner at", position);
    return this.#nodes[this.#slotMembers[this.#slotAt(position)]!]!;
  }

  /**
   * The ranges in which the preference list (length min(n, nodes)) is constant, with that list,
   * ordered by end; together they cover the ring exactly once. Adjacent vnodes with the same list
   * are merged. The unit for per-range anti-entropy and for transfer planning.
   */
  replicaRanges(n: number): ReplicaRange[] {
    validateReplicaCount("replica ranges", n);
    const { ends, slots } = this.#distinctTokens();
    const lists = slots.map((slot) => this.#walk(slot, n));
    return circularRuns(ends, lists, sameList).map(({ range, label }) => ({ range, replicas: label }));
  }

  /**
   * The nodes that share at least one replica range with `node` (for N = n), ascending; [] when
   * `node` is not in the ring. Worked out once per ring and n (a frozen array, shared).
   */
  replicaPeers(node: number, n: number): readonly number[] {
    validateReplicaCount("replica peers", n);
    const key = `${node}:${n}`;
    let peers = this.#layout.replicaPeers.get(key);
    if (peers === undefined) {
      const found = new Set<number>();
      if (this.has(node)) {
        for (const { replicas } of this.replicaRanges(n)) {
          if (replicas.includes(node)) for (const other of replicas) if (other !== node) found.add(other);
        }
      }
      peers = Object.freeze([...found].sort((a, b) => a - b));
      this.#layout.replicaPeers.set(key, peers);
    }
    return peers;
  }

  /** The ranges in which `node` is among the first n of the preference list, ordered by end, merged. */
  rangesOf(node: number, n: number): TokenRange[] {
    validateReplicaCount("ranges of", n);
    const member = this.#memberIndex(node);
    if (member < 0) {
      throw new LoomRangeError(`ranges of failed: node ${describe(node)} is not in the ring (nodes ${this.#nodes.join(", ")})`);
    }
    const { ends, slots } = this.#distinctTokens();
    const holds = slots.map((slot) => this.#walk(slot, n).includes(node));
    return circularRuns(ends, holds, (a, b) => a === b)
      .filter((run) => run.label)
      .map((run) => run.range);
  }

  #memberIndex(node: number): number {
    let low = 0;
    let high = this.#nodes.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const value = this.#nodes[middle]!;
      if (value === node) return middle;
      if (value < node) low = middle + 1;
      else high = middle - 1;
    }
    return -1;
  }

  #validatePosition(action: string, position: number): void {
    if (!Number.isInteger(position) || position < 0 || position >= RING_SIZE) {
      throw new LoomRangeError(`${action} failed: position is ${describe(position)}, must be an integer in 0..2^53-1`);
    }
  }

  /** The slot owning `position`: the first token >= position, wrapping to slot 0. Among equal tokens, the first. */
  #slotAt(position: number): number {
    const tokens = this.#tokens;
    const bucket = Math.floor(position / this.#bucketWidth);
    // The answer lies in [start of this bucket, start of the next]: every earlier token is below
    // the bucket, and the next bucket's first token is >= every position in this one.
    let low = this.#bucketStarts[bucket]!;
    let high = this.#bucketStarts[bucket + 1]!;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (tokens[middle]! < position) low = middle + 1;
      else high = middle;
    }
    return low === tokens.length ? 0 : low;
  }

  /** Distinct token values ascending, each with the first slot holding it (the one that owns its range). */
  #distinctTokens(): { ends: number[]; slots: number[] } {
    const ends: number[] = [];
    const slots: number[] = [];
    const tokens = this.#tokens;
    for (let slot = 0; slot < tokens.length; slot++) {
      if (slot > 0 && tokens[slot] === tokens[slot - 1]) continue;
      ends.push(tokens[slot]!);
      slots.push(slot);
    }
    return { ends, slots };
  }

  /** REQUIRES: n >= 1 integer, slot valid. Distinct nodes clockwise from `slot`, min(n, nodes) of them. */
  #walk(slot: number, n: number): number[] {
    const want = Math.min(n, this.#nodes.length);
    const members = this.#slotMembers;
    const chosen = this.#chosenEpoch;
    if (this.#epoch === 0xffff_ffff) {
      chosen.fill(0);
      this.#epoch = 0;
    }
    const epoch = ++this.#epoch;
    const list: number[] = [];
    let at = slot;
    for (let steps = 0; steps < members.length && list.length < want; steps++) {
      const member = members[at]!;
      if (chosen[member] !== epoch) {
        chosen[member] = epoch;
        list.push(this.#nodes[member]!);
      }
      at = at + 1 === members.length ? 0 : at + 1;
    }
    assert(list.length === want, "preference walk: every node has a vnode, so the walk finds them all");
    return list;
  }
}
