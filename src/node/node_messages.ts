/**
 * What the main thread and a node say to each other: client requests, the node's answers, and the
 * orders of a ring change (the rings described as plain data, so a node rebuilds them exactly).
 * Plain, structured-cloneable types; the message numbers are in src/transport/message_types.ts.
 */
import type { AntiEntropyConfig } from "../antientropy/anti_entropy_config.ts";
import type { HandoffConfig } from "../handoff/handoff_config.ts";
import type { GossipConfig } from "../membership/gossip.ts";
import type { MessageType } from "../transport/message_types.ts";

/** The main thread's peer number on every node's transport. */
export const MAIN_PEER = 1_000_000;

export interface PutRequest {
  readonly type: typeof MessageType.requestPut;
  readonly requestId: number;
  readonly key: Uint8Array;
  /** null deletes (writes a tombstone). */
  readonly value: Uint8Array | null;
  readonly context: string;
  readonly preferenceList: readonly number[];
  readonly w: number;
  readonly timeoutMs: number;
  readonly pruneThreshold: number;
  /** While the ring changes: the old and the new replica set, each needing W (put_session.ts). */
  readonly quorumGroups?: readonly (readonly number[])[];
  /** The key's other nodes in ring order after its N primaries: stand-ins for primaries that are down. */
  readonly fallbacks?: readonly number[];
  /** Acknowledgements that must come from primaries (Riak's pw); 0 or absent: none. */
  readonly pw?: number;
}

export interface GetRequest {
  readonly type: typeof MessageType.requestGet;
  readonly requestId: number;
  readonly key: Uint8Array;
  readonly preferenceList: readonly number[];
  readonly r: number;
  readonly timeoutMs: number;
  /** As for PutRequest. */
  readonly fallbacks?: readonly number[];
  /** Answers that must come from primaries (Riak's pr); 0 or absent: none. */
  readonly pr?: number;
}

/** What the node answers the main thread: a session's result, or a refused request. */
export interface ResponseMessage {
  readonly type: typeof MessageType.response;
  readonly requestId: number;
  readonly result: unknown;
}

/** What a node needs to know of the cluster beyond its requests; sent at start and on every change. */
export interface NodeSettings {
  /** The ring's members (gossip peers). */
  readonly members: readonly number[];
  /** The current ring (where hints belong). */
  readonly ring: RingSpec;
  readonly gossip: GossipConfig;
  readonly handoff: HandoffConfig;
  /**
   * Members that still owe the cleanup of the last ring change (they may hold copies of keys they
   * no longer replicate): no tombstone is purged while one does.
   */
  readonly cleanupsPending: readonly number[];
  readonly antiEntropy: AntiEntropyConfig;
  /** Which replicas a read asks first (ClusterConfig.readFanout). */
  readonly readFanout: "quorum" | "all";
}

export type { RingSpec } from "../ring/ring_spec.ts";
import type { RingSpec } from "../ring/ring_spec.ts";
export type { CleanupReport, StreamPlan, StreamReport } from "../ringchange/ring_change_messages.ts";
