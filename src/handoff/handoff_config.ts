/**
 * Hinted handoff's settings: how long a primary that is down gets hints, how many hint bytes one
 * node holds for one target, and how fast hints are handed back. Validated with the cluster's
 * configuration (src/cluster/cluster_config.ts); every field changes live.
 */
export interface HandoffConfig {
  /**
   * A primary down for longer than this gets no more hints (Cassandra's max_hint_window): its
   * writes go to the primaries that are up only, and it catches up by read repair and
   * anti-entropy. Longer windows mean more hints to hold and replay. @default 10800000 (3 hours)
   */
  readonly windowMs: number;
  /**
   * Most hint bytes (keys and values) one node holds for one down target; a hint past it is
   * refused (Cassandra's max_hints_size_per_host). @default 67108864 (64 MiB)
   */
  readonly bytesPerTargetMax: number;
  /** Most hinted keys a node hands back per second to a target that came back. @default 5000 */
  readonly keysPerSecond: number;
}
