/**
 * What the main thread and a node say to each other during a ring change: the order to stream a
 * node's share of the keys that move, its report, and the cleanup's report. Plain,
 * structured-cloneable data; the rings travel as RingSpecs.
 */
import type { RingSpec } from "../ring/ring_spec.ts";

/** The main thread's order to stream this node's share of the keys whose replicas change. */
export interface StreamPlan {
  readonly streamId: number;
  readonly before: RingSpec;
  readonly after: RingSpec;
  /** Most keys this node sends per second (the cluster's streamKeysPerSecond). */
  readonly keysPerSecond: number;
}

export interface StreamReport {
  readonly streamId: number;
  /** Keys this node read while scanning its store. */
  readonly keysScanned: number;
  /** (key, target) pairs sent: a key that gains two replicas is sent twice. */
  readonly keysSent: number;
  /**
   * (key, new replica) pairs this node answers for: each is counted by exactly one node (the
   * key's first replica before the change), so the cluster's sum is the copies the move creates.
   */
  readonly keysMoved: number;
  /** Of the keys sent, those the target did not hold when they arrived (dual writes may come first). */
  readonly keysNew: number;
  readonly chunks: number;
}

export interface CleanupReport {
  readonly keysScanned: number;
  /** Keys removed because this node no longer replicates them. */
  readonly keysDropped: number;
}
