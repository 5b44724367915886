/**
 * Anti-entropy's settings: whether it runs, the Merkle tree size, how often nodes compare trees,
 * how fast they repair, and how long a tombstone is kept. Validated with the cluster's
 * configuration (src/cluster/cluster_config.ts); every field changes live.
 */
export interface AntiEntropyConfig {
  /**
   * Whether anti-entropy runs: trees kept as writes land, exchanges, tombstone purge. Switched
   * off, nodes drop their trees and purge nothing (tombstones are kept); switched back on, they
   * rebuild their trees in the pool. @default true
   */
  readonly enabled: boolean;
  /**
   * Merkle tree leaves (segments) per replica pair: more buckets, smaller repairs (fewer keys
   * sent per differing segment), bigger trees to compare (docs/anti-entropy.md). @default 1024
   */
  readonly buckets: number;
  /** Pause between anti-entropy rounds per node: each round compares trees with one peer. @default 10000 */
  readonly intervalMs: number;
  /** Most keys a node sends per second while repairing (load kept for clients vs repair speed). @default 5000 */
  readonly keysPerSecond: number;
  /**
   * A key whose versions are all tombstones is purged this long after its delete, once
   * anti-entropy has seen every replica hold it and no member holds a hint older than the delete
   * (Cassandra's gc_grace_seconds). At least twice gossip.failAfterMs. @default 86400000 (1 day)
   */
  readonly tombstoneGraceMs: number;
}
