/**
 * The contract between the main thread and a node worker (workers/node.ts): what the worker is
 * started with, and the control calls it serves (typed RPC over its control port).
 */
import type { MessagePort } from "node:worker_threads";
import type { NodeControl, NodeStart } from "../cluster/node_host.ts";
import type { DiskFault } from "../io/faulty_file_system.ts";
import type { FsyncPolicy } from "../storage/store_config.ts";
import type { LinkFaults } from "../transport/link_faults.ts";

export interface NodeWorkerData {
  readonly nodeId: number;
  readonly directory: string;
  readonly fsync: FsyncPolicy;
  readonly memtableBytes: number;
  /** The cluster's context secret: the node signs the contexts it returns and verifies those it is sent. */
  readonly contextSecret: Uint8Array;
  /** Generation, members and gossip settings, chosen by the cluster core. */
  readonly start: NodeStart;
  /** A fresh actor, used only if the node's last life did not end cleanly (node_actor.ts). */
  readonly freshActor: number;
  /** Fresh actors for the writes this life coordinates as a fallback (node_actor.ts). */
  readonly fallbackActors: readonly number[];
  /** The cluster's link faults in force when the node starts. */
  readonly linkFaults: LinkFaults;
  /** The disk fault of the node's disk when it starts (a fault outlives the thread: it is the disk's). */
  readonly diskFault: DiskFault | null;
  /** The data-plane port to the main thread. */
  readonly mainPort: MessagePort;
  /** Control calls from the main thread (NodeWorkerControl) arrive here. */
  readonly controlPort: MessagePort;
  /** Flush and compaction jobs go to the cluster's shared pool through this port. */
  readonly jobsPort: MessagePort;
}

/** What the main thread can ask a node worker: the core's control calls plus the shell's own. */
export interface NodeWorkerControl extends NodeControl {
  readonly [name: string]: (...args: never[]) => Promise<unknown>;
  /** Hands over the port to `peer` (a restarted peer comes back on a new port). */
  connect(peer: number, port: MessagePort): Promise<void>;
  /** `peer` left the cluster. */
  disconnect(peer: number): Promise<void>;
  setLinkFaults(faults: LinkFaults): Promise<void>;
  /** Switches a disk fault on (or off with null) for this node's store. */
  setDiskFault(fault: DiskFault | null): Promise<void>;
  /** Answers, then blocks the thread for `ms`: it serves nothing, fires no timer, keeps its state. */
  pause(ms: number): Promise<void>;
  /** Closes the store cleanly (releasing its lock); the thread exits after answering. */
  close(): Promise<void>;
}
