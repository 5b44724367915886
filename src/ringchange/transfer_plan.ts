/**
 * Planning a ring change: which token ranges change replica set between two rings, and who must
 * stream each range to whom. Pure; the streaming protocol executes the plan.
 *
 * Exact: the plan is computed on the union of both rings' range boundaries, inside each piece of
 * which both rings have a constant preference list, so a key's replica set changed if and only if
 * its position lies in a transfer's range.
 */
import {
  circularRuns,
  type HashRing,
  keyPosition,
  type TokenRange,
} from "../ring/hash_ring.ts";
import { describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import type { Placement } from "../ring/ring_spec.ts";

export interface Transfer {
  /** The positions whose replica set changes (see hash_ring.ts for the range rule). */
  readonly range: TokenRange;
  /** The replicas before, preference order: any of them holds the range's data and can stream it. */
  readonly sources: readonly number[];
  /** The replicas after, preference order. */
  readonly replicas: readonly number[];
  /** Nodes that gain the range (in `replicas`, not in `sources`): each must receive its data. */
  readonly targets: readonly number[];
  /** Nodes that lose the range (in `sources`, not in `replicas`): may drop it once the targets have it. */
  readonly releases: readonly number[];
}

export interface KeyMoves {
  readonly keys: number;
  /** Keys whose replica set (as a set) differs between the rings. */
  readonly replicaSetChanged: number;
  /** Keys whose primary owner differs. */
  readonly ownerChanged: number;
}

function validateChange(action: string, before: HashRing, after: HashRing, n: number): void {
  for (const [name, ring] of [["before", before], ["after", after]] as const) {
    if (typeof ring !== "object" || ring === null || typeof ring.replicaRanges !== "function") {
      throw new LoomTypeError(`${action} failed: ${name} is ${describe(ring)}, must be a HashRing`);
    }
  }
  if (typeof n !== "number" || !Number.isInteger(n)) {
    throw new LoomTypeError(`${action} failed: n is ${describe(n)}, must be an integer`);
  }
  if (n < 1) throw new LoomRangeError(`${action} failed: n is ${n}, must be at least 1`);
}

function sameSet(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((node) => b.includes(node));
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((node, i) => node === b[i]);
}

/** Sorted distinct union of two ascending arrays. */
function unionAscending(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const next = j >= b.length || (i < a.length && a[i]! <= b[j]!) ? a[i]! : b[j]!;
    if (i < a.length && a[i] === next) i++;
    if (j < b.length && b[j] === next) j++;
    out.push(next);
  }
  return out;
}

/**
 * For each boundary (ascending), the replica list of the range containing it. REQUIRES: `ranges`
 * ordered by end (as replicaRanges returns them) and every range end among the boundaries.
 */
function listsAtBoundaries(ranges: readonly { range: TokenRange; replicas: readonly number[] }[], boundaries: readonly number[]): (readonly number[])[] {
  const lists: (readonly number[])[] = [];
  let r = 0;
  for (const boundary of boundaries) {
    while (r < ranges.length && ranges[r]!.range.endInclusive < boundary) r++;
    // Past the last end: the position wraps into the first range.
    lists.push((ranges[r] ?? ranges[0]!).replicas);
  }
  return lists;
}

interface Piece {
  readonly sources: readonly number[];
  readonly replicas: readonly number[];
}

/**
 * The ranges whose replica set (first min(n, nodes) of the preference list) differs between
 * `before` and `after`, merged where neighbours have the same before and after lists, ordered by
 * end. Empty when the rings place every key on the same set of nodes.
 */
export function planTransfer(before: HashRing, after: HashRing, n: number, nAfter: number = n): Transfer[] {
  validateChange("plan transfer", before, after, n);
  validateChange("plan transfer", before, after, nAfter);
  const rangesBefore = before.replicaRanges(n);
  const rangesAfter = after.replicaRanges(nAfter);
  const boundaries = unionAscending(
    rangesBefore.map((entry) => entry.range.endInclusive),
    rangesAfter.map((entry) => entry.range.endInclusive),
  );
  const listsBefore = listsAtBoundaries(rangesBefore, boundaries);
  const listsAfter = listsAtBoundaries(rangesAfter, boundaries);
  const pieces: (Piece | null)[] = boundaries.map((_, k) => {
    const sources = listsBefore[k]!;
    const replicas = listsAfter[k]!;
    return sameSet(sources, replicas) ? null : { sources, replicas };
  });
  const samePiece = (a: Piece | null, b: Piece | null): boolean =>
    a === b || (a !== null && b !== null && sameList(a.sources, b.sources) && sameList(a.replicas, b.replicas));
  const transfers: Transfer[] = [];
  for (const { range, label } of circularRuns(boundaries, pieces, samePiece)) {
    if (label === null) continue;
    transfers.push({
      range,
      sources: label.sources,
      replicas: label.replicas,
      targets: label.replicas.filter((node) => !label.sources.includes(node)),
      releases: label.sources.filter((node) => !label.replicas.includes(node)),
    });
  }
  return transfers;
}

/** Counts, over `keys`, those whose replica set and those whose primary owner differ between the rings. */
export function keyMoves(before: HashRing, after: HashRing, n: number, keys: Iterable<Uint8Array>, nAfter: number = n): KeyMoves {
  validateChange("key moves", before, after, n);
  validateChange("key moves", before, after, nAfter);
  let count = 0;
  let replicaSetChanged = 0;
  let ownerChanged = 0;
  for (const key of keys) {
    const position = keyPosition(key);
    const listBefore = before.preferenceListAt(position, n);
    const listAfter = after.preferenceListAt(position, nAfter);
    count++;
    if (!sameSet(listBefore, listAfter)) replicaSetChanged++;
    if (listBefore[0] !== listAfter[0]) ownerChanged++;
  }
  return { keys: count, replicaSetChanged, ownerChanged };
}

/**
 * The nodes `self` must stream the key at `position` to when placement changes from `before` to
 * `after`: the key's new replicas that were not replicas before, if `self` was one of its replicas
 * before (every old replica streams, so the targets receive the union of what they held: a write
 * acknowledged by any W of them is in it). [] when `self` did not hold the key or nothing changes.
 */
export function streamTargets(before: Placement, after: Placement, position: number, self: number): number[] {
  const listBefore = before.ring.preferenceListAt(position, before.n);
  if (!listBefore.includes(self)) return [];
  const listAfter = after.ring.preferenceListAt(position, after.n);
  return listAfter.filter((node) => !listBefore.includes(node));
}
