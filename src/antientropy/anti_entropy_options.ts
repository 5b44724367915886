/**
 * What a node injects into its anti-entropy (AntiEntropyOptions): its store, transport, clock,
 * settings, ring, tree scan, repair merge and purge, and what gossip says of its peers. Every part
 * of the folder reaches the outside world through these alone. Types only.
 */
import type { AntiEntropyConfig } from "./anti_entropy_config.ts";
import type { Clock } from "../io/clock.ts";
import type { Placement } from "../ring/ring_spec.ts";
import type { RingSpec } from "../ring/ring_spec.ts";
import type { NodeStore } from "../storage/tracked_store.ts";
import type { Version } from "../storage/version_set_format.ts";
import type { Transport } from "../transport/transport.ts";
import type { TreeBuild, TreeBuildParams } from "./tree_build.ts";

export interface AntiEntropyOptions {
  readonly self: number;
  readonly store: NodeStore;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly config: () => AntiEntropyConfig;
  readonly ring: () => RingSpec;
  readonly placement: () => Placement;
  /** Builds trees from a snapshot of the store taken synchronously at the call. */
  readonly scan: (params: TreeBuildParams) => Promise<TreeBuild>;
  /** Merges entries into this node's store (a repair); resolves with how many keys it changed. */
  readonly merge: (entries: readonly { key: Uint8Array; versions: readonly Version[] }[]) => Promise<number>;
  /** Drops `key` if it still holds exactly `versions` (a purge); resolves with whether it did. */
  readonly purge: (key: Uint8Array, versions: readonly Version[]) => Promise<boolean>;
  readonly isUp: (node: number) => boolean;
  /**
   * Whether this node's store still holds what it reports. False once it failed (a disk fault):
   * the write that failed may sit in its memtable, readable and in the trees, though it never
   * reached the log; agreeing on it would let peers purge a tombstone this node has not kept.
   * While false, the node takes no part in exchanges and purges nothing. @default always true
   */
  readonly trusted?: () => boolean;
  /** The peer's current generation as gossip knows it. */
  readonly generationOf: (node: number) => number;
  /** Whether no hint anywhere may hold a version older than a delete at `deletedAtMs`. */
  readonly purgeAllowed: (deletedAtMs: number) => boolean;
}
