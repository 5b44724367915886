/**
 * Every bound loomkv enforces, in one place. Relationships between limits are asserted at load,
 * so an edit that makes them inconsistent fails at the first import, not in production.
 */
import { assert } from "./assert.ts";

export const limits = {
  /** Largest key in bytes (UTF-8 for string keys). Keys must be non-empty. */
  keyBytesMax: 16 * 1024,
  /**
   * Largest key the storage engine takes: a cluster key plus room for an internal prefix (a hint
   * is stored under its target's id followed by the key).
   */
  storeKeyBytesMax: 16 * 1024 + 8,
  /** Largest value in bytes. */
  valueBytesMax: 1024 * 1024,
  /** Largest opaque version blob (an encoded dotted version vector) in bytes. */
  versionBytesMax: 4 * 1024,
  /** Most versions (siblings plus tombstones) one record may carry. */
  versionsPerRecordMax: 128,
  /** Largest encoded record payload (all versions of one key in one write). */
  recordPayloadBytesMax: 8 * 1024 * 1024,
  /** Smallest and largest memtable arena a store may configure. */
  memtableBytesMin: 64 * 1024,
  memtableBytesMax: 1024 * 1024 * 1024,
  /** Frozen memtables waiting for their flush before writes stall. */
  frozenMemtablesMax: 4,
  /** Target size of an SSTable data block before compression-free cut. */
  blockBytesTarget: 4 * 1024,
  /** Largest commit-log batch (one group commit) in bytes before it is cut into several. */
  logBatchBytesMax: 4 * 1024 * 1024,
  /** Commit-log block size (LevelDB's 32 KiB). */
  logBlockBytes: 32 * 1024,
  /** Bloom filter bits per key accepted by the configuration. */
  bloomBitsPerKeyMin: 1,
  bloomBitsPerKeyMax: 32,
  /** Writes queued behind a stalled memtable before puts are refused with BusyError. */
  pendingWritesMax: 100_000,
  /** Virtual nodes per physical node: past 1024 the load-spread gain is under a point (docs/ring.md). */
  vnodesPerNodeMax: 1024,
  /** Physical nodes in one cluster (one worker thread each, on one host). */
  nodesMax: 256,
  /** Largest node id. Node ids are the actors of version vectors, so they share its bound. */
  nodeIdMax: 0xffff,
  /**
   * Largest actor id a version's dot may carry (a three-byte varint). A node stamps with an actor
   * of its own per life of its store (node_actor.ts): fresh actors are handed out above nodeIdMax.
   */
  actorMax: 2 ** 21 - 1,
  /** Entries a version's past or a causal context may hold (the pruning threshold's upper bound). */
  clockEntriesMax: 64,
  /**
   * Messages one destination's outbox holds in one turn of the event loop; sends past it are
   * dropped and counted. One postMessage carries at most this many.
   */
  outboxMessagesMax: 16_384,
  /**
   * Client requests a cluster has in flight; past it requests are refused with BusyError at once.
   * A node's outbox to one peer in one turn holds at most one message per request in flight for
   * each direction plus repairs, so this bound keeps every outbox far from outboxMessagesMax:
   * without it a burst would be dropped by the transport and surface only as timeouts.
   */
  requestsInFlightMax: 4096,
  /** Messages the simulated network holds in flight (all pairs together) before it drops sends. */
  simInFlightMessagesMax: 1 << 22,
  /** Largest per-message delay the simulated network accepts, in ms (one virtual hour). */
  simDelayMsMax: 3_600_000,
  /**
   * Largest request line plus headers the HTTP front reads (its server's maxHeaderSize); past it
   * the front answers 431. Node's default, 16 KiB, cannot carry a legal key that needs
   * percent-encoding (up to three characters per key byte).
   */
  httpHeaderBytesMax: 64 * 1024,
  /** Largest JSON request body the HTTP front reads (PATCH /config); past it, 413. */
  httpJsonBodyBytesMax: 64 * 1024,
  /**
   * How long the HTTP front keeps reading, and discarding, a body it refused before closing the
   * connection, so that the client reads the 413 instead of a connection reset.
   */
  httpLingerMs: 2000,
  /** Largest cluster.json read back: the configuration and up to nodesMax member ids fit in a few KiB. */
  clusterFileBytesMax: 64 * 1024,
} as const;

assert(limits.storeKeyBytesMax < limits.memtableBytesMin, "a key must fit in the smallest memtable");
assert(limits.storeKeyBytesMax >= limits.keyBytesMax + 4, "a hint's target prefix fits beside any cluster key");
assert(
  limits.valueBytesMax + limits.versionBytesMax < limits.recordPayloadBytesMax,
  "one version must fit in a record",
);
assert(limits.recordPayloadBytesMax + limits.keyBytesMax < limits.logBatchBytesMax + limits.recordPayloadBytesMax);
assert(limits.recordPayloadBytesMax <= limits.logBatchBytesMax * 2, "a record fits in at most two batches");
assert(limits.blockBytesTarget < limits.logBlockBytes);
assert(limits.nodesMax * limits.vnodesPerNodeMax <= 2 ** 18, "a ring holds at most 2^18 tokens");
assert(limits.nodesMax <= limits.nodeIdMax + 1, "every node can have a distinct id");
assert(limits.actorMax > limits.nodeIdMax * 8, "fresh actors, above the node ids, outnumber them many times");
assert(limits.nodesMax <= limits.clockEntriesMax * 4, "a clock can name a good share of the nodes before pruning");
assert(limits.outboxMessagesMax >= 1024, "a turn can carry a 1000-request batch to one peer");
assert(limits.requestsInFlightMax * 3 <= limits.outboxMessagesMax, "requests in flight cannot overflow an outbox");
assert(limits.simInFlightMessagesMax >= limits.outboxMessagesMax * limits.nodesMax, "the simulator can hold one full outbox per node");
assert(
  limits.keyBytesMax * 3 + 16 * 1024 <= limits.httpHeaderBytesMax,
  "every legal key fits in the HTTP front's request line percent-encoded, with 16 KiB left for the rest",
);
assert(limits.clusterFileBytesMax >= limits.nodesMax * 8 + 4096, "cluster.json can name every member");
