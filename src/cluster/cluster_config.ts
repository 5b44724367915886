/**
 * The cluster's configuration: every setting that can change while traffic runs (docs/design.md),
 * with its default and what it trades off. `resolveClusterConfig` validates a whole configuration
 * (names the field and the reason); `applyConfigChange` validates a partial change against the
 * current configuration and returns the next one, or throws and changes nothing.
 *
 * Pure: no IO. The cluster calls it from `createCluster()` and `configure()`.
 */
import { LoomRangeError, LoomTypeError, describe } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import type { GossipConfig } from "../membership/gossip.ts";
import type { HandoffConfig } from "../handoff/handoff_config.ts";
import type { AntiEntropyConfig } from "../antientropy/anti_entropy_config.ts";

export type { GossipConfig } from "../membership/gossip.ts";
export type { HandoffConfig } from "../handoff/handoff_config.ts";
export type { AntiEntropyConfig } from "../antientropy/anti_entropy_config.ts";


export interface ClusterConfig {
  /** Physical nodes (worker threads). @default 5 */
  readonly nodes: number;
  /** Replicas of every key. @default 3 */
  readonly n: number;
  /** Replicas that must acknowledge a write. W + R > N gives read-your-writes. @default 2 */
  readonly w: number;
  /** Replicas that must answer a read. @default 2 */
  readonly r: number;
  /** Virtual nodes per physical node: more even load (docs/ring.md), more ranges. @default 256 */
  readonly vnodesPerNode: number;
  /** Clock entries kept per version before the oldest are pruned (docs/versioning.md). @default 16 */
  readonly pruneThreshold: number;
  /**
   * Default time a request may take before it fails with the replicas that answered; a request may
   * override it (`timeoutMs`). Long enough for a burst of the in-flight limit on a busy 2-core
   * machine (fsync groups and queues under load take hundreds of ms), short enough that a caller
   * learns of a stalled cluster in seconds: Cassandra waits 2 s for writes and 5 s for reads, Riak
   * 60 s. A read goes on to another coordinator after a quarter of it. @default 5000
   */
  readonly requestTimeoutMs: number;
  /**
   * While keys move (vnodes, N or membership changes), each old replica streams at most this many
   * keys per second: lower keeps more of the cores for client requests, higher finishes the move
   * sooner (docs/reconfiguration.md has both measured). Cassandra's stream_throughput_outbound
   * plays the same part. @default 5000
   */
  readonly streamKeysPerSecond: number;
  /**
   * Which replicas a read asks. "quorum" (Cassandra's way) asks R of the N, the coordinator's own
   * copy first (then those its gossip shows up), and the others only when one of those refuses or
   * has not answered within the 99th percentile of the node's recent read round trips (a
   * speculative retry); read repair then mends the replicas asked, anti-entropy the rest (with
   * anti-entropy off, only "all" lets reads mend every replica). "all" (Riak's way)
   * asks all N and repairs every replica that answers, for a third more read work per get at
   * N=3, R=2. Reads with pr, or with stand-ins or hints about for their replicas, always ask
   * all. @default "quorum"
   */
  readonly readFanout: "quorum" | "all";
  readonly gossip: GossipConfig;
  readonly antiEntropy: AntiEntropyConfig;
  readonly handoff: HandoffConfig;
}

export type ClusterConfigChange = Partial<Omit<ClusterConfig, "gossip" | "antiEntropy" | "handoff">> & {
  readonly gossip?: Partial<GossipConfig>;
  readonly antiEntropy?: Partial<AntiEntropyConfig>;
  readonly handoff?: Partial<HandoffConfig>;
};

export const clusterConfigDefaults: ClusterConfig = {
  nodes: 5,
  n: 3,
  w: 2,
  r: 2,
  vnodesPerNode: 256,
  pruneThreshold: 16,
  requestTimeoutMs: 5000,
  streamKeysPerSecond: 5_000,
  readFanout: "quorum",
  gossip: { intervalMs: 100, failAfterMs: 1000, cleanupAfterMs: 30_000 },
  antiEntropy: { enabled: true, buckets: 1024, intervalMs: 10_000, keysPerSecond: 5_000, tombstoneGraceMs: 86_400_000 },
  handoff: { windowMs: 3 * 60 * 60 * 1000, bytesPerTargetMax: 64 * 1024 * 1024, keysPerSecond: 5_000 },
};

const KNOWN_FIELDS = new Set(["nodes", "n", "w", "r", "vnodesPerNode", "pruneThreshold", "requestTimeoutMs", "streamKeysPerSecond", "readFanout", "gossip", "antiEntropy", "handoff"]);
const KNOWN_HANDOFF = new Set(["windowMs", "bytesPerTargetMax", "keysPerSecond"]);
const KNOWN_GOSSIP = new Set(["intervalMs", "failAfterMs", "cleanupAfterMs"]);
const KNOWN_ANTI_ENTROPY = new Set(["enabled", "buckets", "intervalMs", "keysPerSecond", "tombstoneGraceMs"]);

function integerIn(action: string, field: string, value: unknown, min: number, max: number): void {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new LoomTypeError(`${action} failed: ${field} must be an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) {
    throw new LoomRangeError(`${action} failed: ${field} is ${value}, must be between ${min} and ${max}`);
  }
}

function checkFields(action: string, value: unknown, known: Set<string>, prefix: string): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new LoomTypeError(`${action} failed: ${prefix ? prefix.replace(/\.$/, "") : "configuration"} must be an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!known.has(key)) throw new LoomTypeError(`${action} failed: unknown setting ${prefix}${key}`);
  }
}

/** Checks a complete configuration; throws the first problem found, naming the field. */
export function validateClusterConfig(action: string, config: ClusterConfig): ClusterConfig {
  integerIn(action, "nodes", config.nodes, 1, limits.nodesMax);
  integerIn(action, "n", config.n, 1, limits.nodesMax);
  integerIn(action, "w", config.w, 1, limits.nodesMax);
  integerIn(action, "r", config.r, 1, limits.nodesMax);
  if (config.n > config.nodes) throw new LoomRangeError(`${action} failed: n is ${config.n} but the cluster has ${config.nodes} nodes`);
  if (config.w > config.n) throw new LoomRangeError(`${action} failed: w is ${config.w}, must be at most n (${config.n})`);
  if (config.r > config.n) throw new LoomRangeError(`${action} failed: r is ${config.r}, must be at most n (${config.n})`);
  integerIn(action, "vnodesPerNode", config.vnodesPerNode, 1, limits.vnodesPerNodeMax);
  integerIn(action, "pruneThreshold", config.pruneThreshold, 1, limits.clockEntriesMax);
  integerIn(action, "requestTimeoutMs", config.requestTimeoutMs, 1, 600_000);
  integerIn(action, "streamKeysPerSecond", config.streamKeysPerSecond, 100, 10_000_000);
  if (config.readFanout !== "quorum" && config.readFanout !== "all") {
    throw new LoomTypeError(`${action} failed: readFanout must be "quorum" or "all", got ${describe(config.readFanout)}`);
  }
  const { gossip, antiEntropy } = config;
  integerIn(action, "gossip.intervalMs", gossip.intervalMs, 1, 60_000);
  integerIn(action, "gossip.failAfterMs", gossip.failAfterMs, 1, 3_600_000);
  integerIn(action, "gossip.cleanupAfterMs", gossip.cleanupAfterMs, 1, 86_400_000);
  if (gossip.failAfterMs < 2 * gossip.intervalMs) {
    throw new LoomRangeError(
      `${action} failed: gossip.failAfterMs is ${gossip.failAfterMs}, must be at least twice gossip.intervalMs (${gossip.intervalMs}) or healthy nodes flap`,
    );
  }
  if (gossip.cleanupAfterMs <= gossip.failAfterMs) {
    throw new LoomRangeError(`${action} failed: gossip.cleanupAfterMs (${gossip.cleanupAfterMs}) must exceed gossip.failAfterMs (${gossip.failAfterMs})`);
  }
  if (typeof antiEntropy.enabled !== "boolean") {
    throw new LoomTypeError(`${action} failed: antiEntropy.enabled must be a boolean, got ${describe(antiEntropy.enabled)}`);
  }
  integerIn(action, "antiEntropy.buckets", antiEntropy.buckets, 1, 1 << 16);
  if ((antiEntropy.buckets & (antiEntropy.buckets - 1)) !== 0) {
    throw new LoomRangeError(`${action} failed: antiEntropy.buckets is ${antiEntropy.buckets}, must be a power of two`);
  }
  integerIn(action, "antiEntropy.intervalMs", antiEntropy.intervalMs, 1, 86_400_000);
  integerIn(action, "antiEntropy.keysPerSecond", antiEntropy.keysPerSecond, 1, 10_000_000);
  integerIn(action, "antiEntropy.tombstoneGraceMs", antiEntropy.tombstoneGraceMs, 1, 365 * 86_400_000);
  // A purge trusts every member's hint floor as gossip last carried it: up to failAfterMs old,
  // plus the delay of the write that made the hint. The grace must cover both.
  if (antiEntropy.tombstoneGraceMs < 2 * gossip.failAfterMs) {
    throw new LoomRangeError(`${action} failed: antiEntropy.tombstoneGraceMs (${antiEntropy.tombstoneGraceMs}) must be at least twice gossip.failAfterMs (${gossip.failAfterMs})`);
  }
  const { handoff } = config;
  integerIn(action, "handoff.windowMs", handoff.windowMs, 0, 30 * 86_400_000);
  integerIn(action, "handoff.bytesPerTargetMax", handoff.bytesPerTargetMax, 0, 2 ** 40);
  integerIn(action, "handoff.keysPerSecond", handoff.keysPerSecond, 1, 10_000_000);
  return config;
}

/** Defaults overlaid with `options` (unknown settings refused), validated. */
export function resolveClusterConfig(options: unknown = {}): ClusterConfig {
  return applyConfigChange("create cluster", clusterConfigDefaults, options);
}

/**
 * The configuration after `change`, validated as a whole (so `{ n: 2, w: 3 }` fails even though
 * each field alone is in range). Throws and changes nothing on any problem.
 */
export function applyConfigChange(action: string, current: ClusterConfig, change: unknown): ClusterConfig {
  checkFields(action, change, KNOWN_FIELDS, "");
  const partial = change as ClusterConfigChange;
  if (partial.gossip !== undefined) checkFields(action, partial.gossip, KNOWN_GOSSIP, "gossip.");
  if (partial.antiEntropy !== undefined) checkFields(action, partial.antiEntropy, KNOWN_ANTI_ENTROPY, "antiEntropy.");
  if (partial.handoff !== undefined) checkFields(action, partial.handoff, KNOWN_HANDOFF, "handoff.");
  const next: ClusterConfig = {
    ...current,
    ...withoutUndefined(partial),
    gossip: { ...current.gossip, ...withoutUndefined(partial.gossip ?? {}) },
    antiEntropy: { ...current.antiEntropy, ...withoutUndefined(partial.antiEntropy ?? {}) },
    handoff: { ...current.handoff, ...withoutUndefined(partial.handoff ?? {}) },
  };
  return validateClusterConfig(action, next);
}

/** `value` without its undefined fields, so that spreading it overrides only what was given. */
export function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}
