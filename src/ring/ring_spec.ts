/**
 * A ring as the main thread describes it to the nodes and to pool jobs: its members, vnodes per
 * member and N. Every thread rebuilds the same HashRing from it (the ring is a pure function of
 * these three), so a placement never travels as anything bigger.
 */
import { HashRing } from "./hash_ring.ts";

/** One side of a ring change, or the ring in force: the ring and the replication factor N used with it. */
export interface Placement {
  readonly ring: HashRing;
  readonly n: number;
}

export interface RingSpec {
  readonly nodes: readonly number[];
  readonly vnodesPerNode: number;
  readonly n: number;
}

/** The ring a RingSpec describes, rebuilt exactly as the main thread built it, with its N. */
export function placementOf(spec: RingSpec): Placement {
  return { ring: HashRing.build({ nodes: spec.nodes, vnodesPerNode: spec.vnodesPerNode }), n: spec.n };
}
