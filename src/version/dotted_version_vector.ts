/**
 * Dotted version vectors, one per sibling (Preguiça, Baquero, Almeida, Fonte, Gonçalves: "Dotted
 * Version Vectors: Logical Clocks for Optimistic Replication", 2010; the scheme Riak 2 uses).
 *
 * A version's clock is a dot, the single event that created it (actor = the coordinating node,
 * counter, wall timestamp), plus its past: a version vector summarising every event the writer had
 * seen (the causal context the client sent). Its history is `past ∪ {dot}`: the dot is one point,
 * not a range, which is what keeps two writes that carry the same context apart even when the same
 * node stamps both (a plain per-node vector clock would make the second one descend the first).
 *
 * Version `a` is seen by `b` when `a.dot` is in b's history; `b` dominates `a` when it has seen `a`
 * and `a` has not seen `b`. Replicas keep the versions no other version dominates.
 *
 * Pure: no clock, no randomness. Wall timestamps are supplied by the caller and only order pruning
 * and siblings (newest first); causality never depends on them. See docs/versioning.md.
 */
import { describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";

/** Most entries a version's past or a causal context may hold (pruneThreshold's upper bound). */
export const clockEntriesMax: number = limits.clockEntriesMax;
/** Largest actor id. An actor is one life of a node's store (node_actor.ts). */
export const actorMax: number = limits.actorMax;
/** Largest counter a dot may take. */
export const counterMax = Number.MAX_SAFE_INTEGER;
/** Largest wall timestamp in milliseconds (2^48 - 1: the year 10889). */
export const timestampMsMax = 2 ** 48 - 1;

/** The event that created a version: the `counter`-th write `actor` stamped for this key. */
export interface Dot {
  readonly actor: number;
  /** 1 or more. */
  readonly counter: number;
  /** The coordinator's wall time when it stamped the write. */
  readonly timestampMs: number;
}

/** Events (actor, 1..counter) seen; `timestampMs` is the wall time of the newest of them. */
export interface ClockEntry {
  readonly actor: number;
  /** 1 or more. */
  readonly counter: number;
  readonly timestampMs: number;
}

/**
 * The clock of one version. Invariants (checked by the codec, kept by `update`): `past` is sorted by
 * strictly increasing actor, holds at most clockEntriesMax entries, and does not reach the version's
 * own dot (`past[dot.actor] < dot.counter`).
 */
export interface DottedVersionVector {
  readonly dot: Dot;
  readonly past: readonly ClockEntry[];
}

/** A context entry; `frontier` says a version the reader saw has a dot by this actor. */
export interface ContextEntry extends ClockEntry {
  readonly frontier: boolean;
}

/**
 * What a reader saw of a key: the join of the histories of the versions it read. It goes to the
 * client as an opaque string (version_codec.ts) and comes back with the client's next write.
 * Entries are sorted by strictly increasing actor; at most clockEntriesMax of them.
 */
export interface CausalContext {
  readonly entries: readonly ContextEntry[];
}

export type Ordering = "before" | "after" | "equal" | "concurrent";

/** The context of a blind write: it supersedes nothing. */
export const emptyContext: CausalContext = { entries: [] };

/** Anything that carries a clock (a decoded version, a sibling with its value). */
export interface Clocked {
  readonly clock: DottedVersionVector;
}

// ---- comparison ------------------------------------------------------------------------------

/** The counter `entries` hold for `actor`, 0 when absent. REQUIRES: entries sorted by actor. */
export function counterOf(entries: readonly ClockEntry[], actor: number): number {
  for (const entry of entries) {
    if (entry.actor === actor) return entry.counter;
    if (entry.actor > actor) return 0;
  }
  return 0;
}

/** True when `dot` is in the history of `clock` (its own dot, or within its past). */
export function hasSeen(clock: DottedVersionVector, dot: Pick<Dot, "actor" | "counter">): boolean {
  if (dot.actor === clock.dot.actor && dot.counter === clock.dot.counter) return true;
  return dot.counter <= counterOf(clock.past, dot.actor);
}

/** True when both clocks are identical, timestamps included. */
export function sameClock(a: DottedVersionVector, b: DottedVersionVector): boolean {
  if (a.dot.actor !== b.dot.actor || a.dot.counter !== b.dot.counter || a.dot.timestampMs !== b.dot.timestampMs) {
    return false;
  }
  if (a.past.length !== b.past.length) return false;
  for (let i = 0; i < a.past.length; i++) {
    const left = a.past[i]!;
    const right = b.past[i]!;
    if (left.actor !== right.actor || left.counter !== right.counter || left.timestampMs !== right.timestampMs) {
      return false;
    }
  }
  return true;
}

/**
 * How `a` relates to `b`: "before" when b has seen a and a has not seen b, "after" the reverse,
 * "equal" for identical clocks, else "concurrent". Two different clocks that have seen each other
 * (possible only if a dot was reused) are "concurrent": both survive, neither is silently dropped.
 * O(entries) with an O(1) causality test per direction.
 */
export function compare(a: DottedVersionVector, b: DottedVersionVector): Ordering {
  if (sameClock(a, b)) return "equal";
  const aSeenByB = hasSeen(b, a.dot);
  const bSeenByA = hasSeen(a, b.dot);
  if (aSeenByB && !bSeenByA) return "before";
  if (bSeenByA && !aSeenByB) return "after";
  return "concurrent";
}

/** True when `a` is `b` or comes causally after it. */
export function descends(a: DottedVersionVector, b: DottedVersionVector): boolean {
  const ordering = compare(a, b);
  return ordering === "after" || ordering === "equal";
}

/** True when `a` strictly supersedes `b`: a replica holding both may drop `b`. */
export function dominates(a: DottedVersionVector, b: DottedVersionVector): boolean {
  return compare(a, b) === "after";
}

/**
 * Sibling order, newest first: dot timestamp descending, then counter descending, then actor
 * ascending. Returns 0 only for equal dots.
 */
export function compareNewestFirst(a: DottedVersionVector, b: DottedVersionVector): number {
  return b.dot.timestampMs - a.dot.timestampMs || b.dot.counter - a.dot.counter || a.dot.actor - b.dot.actor;
}

// ---- the read side: siblings to context ------------------------------------------------------

/**
 * The causal context of a set of versions (the siblings a read returns): per actor, the highest
 * counter any history reaches, with that event's timestamp. `frontier` marks actors that stamped
 * one of the versions. Past clockEntriesMax actors, the oldest non-frontier entries are dropped,
 * which can only leave more siblings after the next write, never fewer.
 */
export function join(clocks: readonly DottedVersionVector[]): CausalContext {
  const byActor: JoinedEntries = new Map();
  for (const clock of clocks) {
    absorb(byActor, clock.dot, true);
    for (const entry of clock.past) absorb(byActor, entry, false);
  }
  return joinedContext(byActor);
}

/**
 * The join of contexts of one key (read or returned by writes that ran side by side): per actor
 * the highest (counter, timestamp) any of them holds, frontier when one of them marks it, capped
 * at clockEntriesMax like `join`. A write carrying it supersedes every version one of them covers.
 * REQUIRES: every context from decodeContext, join or joinContexts.
 */
export function joinContexts(contexts: readonly CausalContext[]): CausalContext {
  const byActor: JoinedEntries = new Map();
  for (const context of contexts) for (const entry of context.entries) absorb(byActor, entry, entry.frontier);
  return joinedContext(byActor);
}

type JoinedEntries = Map<number, { counter: number; timestampMs: number; frontier: boolean }>;

function absorb(byActor: JoinedEntries, entry: ClockEntry, frontier: boolean): void {
  const held = byActor.get(entry.actor);
  if (!held) {
    byActor.set(entry.actor, { counter: entry.counter, timestampMs: entry.timestampMs, frontier });
    return;
  }
  // Highest (counter, timestamp) wins: commutative and associative, so any read order agrees.
  if (entry.counter > held.counter || (entry.counter === held.counter && entry.timestampMs > held.timestampMs)) {
    held.counter = entry.counter;
    held.timestampMs = entry.timestampMs;
  }
  held.frontier ||= frontier;
}

function joinedContext(byActor: JoinedEntries): CausalContext {
  const entries: ContextEntry[] = [...byActor]
    .sort(([left], [right]) => left - right)
    .map(([actor, held]) => ({ actor, counter: held.counter, timestampMs: held.timestampMs, frontier: held.frontier }));
  return { entries: pruneEntries(entries, clockEntriesMax) };
}

// ---- the write side: stamping --------------------------------------------------------------

export interface UpdateOptions {
  /** The context the client read (decoded), or emptyContext for a blind write. */
  readonly context: CausalContext;
  /** The coordinating node's id. REQUIRES: it holds the key (it is a replica). */
  readonly actor: number;
  /** Clocks of every version the coordinator holds for the key now, tombstones included. */
  readonly local: readonly DottedVersionVector[];
  /** The coordinator's wall time in ms. Orders pruning and siblings only. */
  readonly timestampMs: number;
  /**
   * Most entries the new version's past keeps, 1..clockEntriesMax. Lower saves bytes per version
   * but, once more actors than this have written a key, can keep a superseded version as a false
   * sibling (never drops a write).
   */
  readonly pruneThreshold: number;
  /**
   * Lowest counter the new dot may take. Dots must never be reused: pass a per-node counter that
   * only grows and survives restarts (e.g. the store's sequence number) so that pruning, which can
   * erase every trace of this actor from a key's versions, cannot make it issue a counter twice.
   * @default 1
   */
  readonly counterFloor?: number;
}

/**
 * The clock for a new write. Its dot is (actor, 1 + the highest counter of `actor` in the context
 * or the local versions, at least counterFloor); its past is the client's context, pruned to
 * pruneThreshold entries. The new version supersedes exactly the versions the client had seen; local
 * versions the client had not seen stay as siblings (store it with `sync(local, [new])`).
 * REQUIRES: `context` from decodeContext or join, `local` from decodeVersion or update.
 * Throws LoomTypeError or LoomRangeError on an invalid option.
 */
export function update(options: UpdateOptions): DottedVersionVector {
  const { context, actor, local, timestampMs, pruneThreshold } = options;
  const counterFloor = options.counterFloor ?? 1;
  checkInteger("actor", actor, 0, actorMax);
  checkInteger("timestampMs", timestampMs, 0, timestampMsMax);
  checkInteger("pruneThreshold", pruneThreshold, 1, clockEntriesMax);
  checkInteger("counterFloor", counterFloor, 0, counterMax);
  let highest = counterOf(context.entries, actor);
  for (const clock of local) {
    if (clock.dot.actor === actor) highest = Math.max(highest, clock.dot.counter);
    highest = Math.max(highest, counterOf(clock.past, actor));
  }
  const counter = Math.max(highest + 1, counterFloor);
  if (counter > counterMax) {
    throw new LoomRangeError(`update failed: actor ${actor} would need counter ${counter}, limit is ${counterMax}`);
  }
  const past = pruneEntries(context.entries, pruneThreshold).map(({ actor, counter, timestampMs }) => ({
    actor,
    counter,
    timestampMs,
  }));
  return { dot: { actor, counter, timestampMs }, past };
}

/**
 * Keeps at most `threshold` entries: drops the oldest by (timestamp, actor), non-frontier entries
 * before frontier ones (a frontier entry is what lets the write supersede a sibling the client saw).
 * Returns `entries` itself when nothing is dropped, else a new array sorted by actor.
 */
export function pruneEntries<T extends ContextEntry>(entries: readonly T[], threshold: number): readonly T[] {
  if (entries.length <= threshold) return entries;
  const dropOrder = [...entries].sort(
    (a, b) => Number(a.frontier) - Number(b.frontier) || a.timestampMs - b.timestampMs || a.actor - b.actor,
  );
  const dropped = new Set(dropOrder.slice(0, entries.length - threshold));
  return entries.filter((entry) => !dropped.has(entry));
}

// ---- the replica side: merging ---------------------------------------------------------------

/**
 * The items of `items` that no other item dominates, in their input order. Keeps duplicates
 * (equal clocks do not dominate each other). O(n² · entries).
 */
export function keepUndominated<T extends Clocked>(items: readonly T[]): T[] {
  return items.filter((item) => !items.some((other) => other !== item && dominates(other.clock, item.clock)));
}

/**
 * The replica-side merge: the versions of `local` and `incoming` that no other version dominates,
 * identical clocks once (the local copy wins), newest first. Commutative on the set of clocks,
 * idempotent, and associative as long as no pruning happened (see docs/versioning.md).
 */
export function sync<T extends Clocked>(local: readonly T[], incoming: readonly T[]): T[] {
  const distinct: T[] = [];
  for (const item of [...local, ...incoming]) {
    if (!distinct.some((kept) => sameClock(kept.clock, item.clock))) distinct.push(item);
  }
  return keepUndominated(distinct).sort((a, b) => compareNewestFirst(a.clock, b.clock));
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new LoomTypeError(`update failed: ${name} is ${describe(value)}, must be an integer`);
  }
  if (value < min || value > max) {
    throw new LoomRangeError(`update failed: ${name} is ${value}, must be in ${min}..${max}`);
  }
}
