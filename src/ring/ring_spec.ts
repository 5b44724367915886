/**
 * A ring as the main thread describes it to the nodes and to pool jobs: its members, vnodes per
 * member and N. Every thread rebuilds the same HashRing from it (the ring is a pure function of
 * these three), so a placement never travels as anything bigger.
 */
import { HashRing } from "./hash_ring.ts";
import type { Placement } from "./ring_change.ts";

export interface RingSpec {
  readonly nodes: readonly number[];
  readonly vnodesPerNode: number;
  readonly n: number;
}

/** The ring a RingSpec describes, rebuilt exactly as the main thread built it, with its N. */
export function placementOf(spec: RingSpec): Placement {
  return { ring: HashRing.build({ nodes: spec.nodes, vnodesPerNode: spec.vnodesPerNode }), n: spec.n };
}
