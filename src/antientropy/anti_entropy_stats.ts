/**
 * What a node reports of its anti-entropy (AntiEntropyStats), the counters behind it that the
 * other parts of the folder move, and the convergence test over every node's report (rootsAgree).
 * Pure.
 */

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

/** A node's counters, all at 0: one object shared by the parts that count (AntiEntropy reports it). */
export function newCounters() {
  return {
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
}

export type AntiEntropyCounters = ReturnType<typeof newCounters>;
