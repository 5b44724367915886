/**
 * A Merkle tree over key segments, kept up to date as writes land (TictacAAE's way): each leaf
 * is the XOR of the hashes of the keys in its segment, each branch the XOR of its leaves, the root
 * the XOR of the branches. XOR makes every update O(1): a key going from hash `a` to hash `b` flips
 * its leaf, its branch and the root by `a ^ b`, whatever order writes come in, so two replicas
 * holding the same versions of the same keys hold equal trees. `buckets` leaves (a power of two)
 * in sqrt(buckets)-wide branches: two levels to descend in an exchange. Pure.
 */
import type { Hash64 } from "./item_hash.ts";

export class SegmentTree {
  readonly buckets: number;
  readonly branchWidth: number;
  /** Leaves as (high, low) pairs. */
  readonly #leaves: Uint32Array;
  readonly #branches: Uint32Array;

  constructor(buckets: number) {
    this.buckets = buckets;
    this.branchWidth = 2 ** Math.ceil(Math.log2(buckets) / 2);
    this.#leaves = new Uint32Array(buckets * 2);
    this.#branches = new Uint32Array(Math.ceil(buckets / this.branchWidth) * 2);
  }

  get branchCount(): number {
    return this.#branches.length / 2;
  }

  /** Flips segment `segment` by `delta` (old hash XOR new hash of one key). */
  flip(segment: number, delta: Hash64): void {
    if (delta.high === 0 && delta.low === 0) return;
    this.#leaves[segment * 2] = (this.#leaves[segment * 2]! ^ delta.high) >>> 0;
    this.#leaves[segment * 2 + 1] = (this.#leaves[segment * 2 + 1]! ^ delta.low) >>> 0;
    const branch = Math.floor(segment / this.branchWidth);
    this.#branches[branch * 2] = (this.#branches[branch * 2]! ^ delta.high) >>> 0;
    this.#branches[branch * 2 + 1] = (this.#branches[branch * 2 + 1]! ^ delta.low) >>> 0;
  }

  /** The leaf of `segment`. */
  leaf(segment: number): Hash64 {
    return { high: this.#leaves[segment * 2]!, low: this.#leaves[segment * 2 + 1]! };
  }

  /** Flips every leaf by the matching (high, low) pair of `leaves` (a tree built elsewhere). */
  xorLeaves(leaves: Uint32Array): void {
    for (let segment = 0; segment < this.buckets; segment++) {
      this.flip(segment, { high: leaves[segment * 2]!, low: leaves[segment * 2 + 1]! });
    }
  }

  /** The branches, as (high, low) pairs: what an exchange compares first. */
  branches(): number[] {
    return [...this.#branches];
  }

  /** How many leaves `branch` has (the last branch may be narrower). */
  leafCountOf(branch: number): number {
    return Math.min(this.buckets - branch * this.branchWidth, this.branchWidth);
  }

  /** The leaves of `branch`, as (high, low) pairs. */
  leavesOf(branch: number): number[] {
    const start = branch * this.branchWidth;
    const end = Math.min(this.buckets, start + this.branchWidth);
    return [...this.#leaves.subarray(start * 2, end * 2)];
  }

  /** The root: XOR of every branch, 16 hex digits (equal roots: equal trees, barring a collision). */
  root(): string {
    let high = 0;
    let low = 0;
    for (let index = 0; index < this.#branches.length; index += 2) {
      high = (high ^ this.#branches[index]!) >>> 0;
      low = (low ^ this.#branches[index + 1]!) >>> 0;
    }
    return high.toString(16).padStart(8, "0") + low.toString(16).padStart(8, "0");
  }

  /** Indexes of the branches that differ from `other` (same shape, (high, low) pairs). */
  static differing(mine: readonly number[], theirs: readonly number[]): number[] {
    const differ: number[] = [];
    for (let index = 0; index < mine.length; index += 2) {
      if (mine[index] !== theirs[index] || mine[index + 1] !== theirs[index + 1]) differ.push(index / 2);
    }
    return differ;
  }
}
