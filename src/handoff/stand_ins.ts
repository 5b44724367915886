/**
 * Sloppy quorum's choice of replicas for one request, made by its coordinator: the key's N
 * primaries, with each one this node's gossip shows down replaced by the next healthy node of the
 * key's fallbacks, which keeps the write as a hint for it (Dynamo's sloppy quorum, docs/handoff.md).
 * The main thread's router picks the coordinator by the same ring order (src/cluster/router.ts).
 *
 * Pure: liveness and time come in as functions.
 */

export interface Targets {
  /** The nodes the request goes to, this node first. */
  readonly list: number[];
  /** Stand-ins of this request: fallback (or this node) → the primary it holds a hint for. */
  readonly hints: Map<number, number>;
  /**
   * The primaries in `list` that answer for themselves and are up in this node's view (pw/pr count
   * these): a primary asked although it is down (no stand-in left, or past the hint window) is
   * not counted on, or a pw write would wait for it until its deadline.
   */
  readonly primaries: number[];
  /** Primaries left without a stand-in because they had been down longer than the hint window. */
  readonly skippedWindow: number;
}

export interface TargetChoice {
  /** The coordinating node. */
  readonly self: number;
  /** The key's N replicas, preference order. */
  readonly primaries: readonly number[];
  /** The nodes after them on the ring, in order. */
  readonly fallbacks: readonly number[];
  /** Primaries only, no stand-ins (while keys move, or a node without a hint store). */
  readonly strict: boolean;
  readonly isUp: (node: number) => boolean;
  /** How long `node` has been down in this node's view, ms. */
  readonly downForMs: (node: number) => number;
  /** handoff.windowMs: a primary down longer gets no hint. */
  readonly windowMs: number;
}

/**
 * Where a request goes. This node comes first; when it is not a primary itself (every primary was
 * down when the main thread routed), it stands in for one.
 */
export function chooseTargets(choice: TargetChoice): Targets {
  const { self, primaries, fallbacks, isUp } = choice;
  const hints = new Map<number, number>();
  const list = [self];
  if (choice.strict) {
    for (const node of primaries) if (node !== self) list.push(node);
    return { list, hints, primaries: [...primaries], skippedWindow: 0 };
  }
  let skippedWindow = 0;
  const askedDown = new Set<number>();
  const pool = fallbacks.filter((node) => node !== self && !primaries.includes(node) && isUp(node));
  let selfPlaced = primaries.includes(self);
  for (const primary of primaries) {
    if (primary === self) continue;
    if (isUp(primary)) {
      list.push(primary);
      continue;
    }
    if (choice.downForMs(primary) > choice.windowMs) {
      skippedWindow++; // down too long: no hint, it catches up by repair
      list.push(primary);
      askedDown.add(primary);
      continue;
    }
    const standIn = selfPlaced ? pool.shift() : self;
    if (standIn === undefined) {
      list.push(primary); // no healthy node left to stand in: ask the primary anyway
      askedDown.add(primary);
      continue;
    }
    if (standIn === self) selfPlaced = true;
    else list.push(standIn);
    hints.set(standIn, primary);
  }
  if (!selfPlaced) {
    // Every primary is up in this node's view, though it was asked to coordinate (the main thread
    // saw them down): it stands in for the first one it would have asked, whose copy it keeps as
    // a hint handed back soon, instead of asking that primary too. Counting both toward W would
    // count one replica twice: once the hint was handed back, one disk would hold the write.
    const standFor = list.length > 1 ? list.splice(1, 1)[0]! : primaries[0]!;
    hints.set(self, standFor);
  }
  return { list, hints, primaries: list.filter((node) => primaries.includes(node) && !hints.has(node) && !askedDown.has(node)), skippedWindow };
}
