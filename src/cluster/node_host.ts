/**
 * What the cluster core needs from whoever runs the nodes: worker threads (src/runtime/) or the
 * simulator (src/sim/). The core decides; the host starts and stops nodes and carries control
 * calls to them. Data-plane requests travel on the core's Transport instead.
 */
import type { NodeSettings, RingSpec } from "../node/node_messages.ts";
import type { NodeStats } from "../node/node_stats.ts";
import type { RingChangeControl } from "../ringchange/ring_mover.ts";

/** Control calls to one running node. Each rejects if the node stops before answering. */
export interface NodeControl extends RingChangeControl {
  stats(scan: boolean): Promise<NodeStats>;
  /** `peer`'s thread ended (its exit was observed): the node stops sending it work at once. */
  peerExited(peer: number, generation: number): Promise<void>;
  /** Members, ring, gossip or handoff settings changed: each applies within a round. */
  configure(settings: NodeSettings): Promise<void>;
  /** Merges every table of the node's store into one (a major compaction; purged keys leave the files). */
  compact(): Promise<void>;
}

/** What a node is started with, beyond its id: chosen by the cluster core. */
export interface NodeStart extends NodeSettings {
  /** Higher than every earlier start of this node (gossip generation). */
  readonly generation: number;
  /**
   * The main thread's gossip table at the start: the node begins knowing what the others last
   * said (who holds hints for whom, whose store failed) instead of learning it over a few rounds.
   */
  readonly gossipTable: readonly number[];
  /**
   * The cleanup of the last ring change the node still owes (it failed, or the node was down):
   * it runs before the node serves; a start whose cleanup fails fails.
   */
  readonly cleanup?: { readonly ring: RingSpec; readonly keysPerSecond: number; readonly freshActor: number };
}

export interface NodeHost {
  /**
   * Starts node `node` on its directory (new, or restarted after a crash), connects it to every
   * running node and the core's transport, and resolves once it serves requests. Rejects with
   * the node's typed error if its store refuses to open.
   */
  startNode(node: number, start: NodeStart): Promise<void>;
  /** Closes node `node`'s store and stops it; resolves when it is gone. */
  stopNode(node: number): Promise<void>;
  /** Tells the running nodes that `node` left the cluster for good. */
  forgetNode(node: number): void;
  control(node: number): NodeControl;
}

/** Membership and liveness as the router sees it. */
export interface NodeStatusView {
  /** Members the router must not send requests to (crashed, or found dead). */
  readonly down: ReadonlySet<number>;
}
