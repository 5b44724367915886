/**
 * Nodes as worker threads: starts each node's worker (workers/node.ts) on its directory, wires a
 * MessageChannel between it and every running node and one to the main thread's transport, and
 * carries control calls to it (typed RPC over comlink on a port of its own). A worker that exits
 * without being asked to (a crash injected with `crash`, or a bug) is reported through `onExit`:
 * until gossip exists, that is how the cluster learns a node is down.
 *
 * Thread contract: the main thread.
 */
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import type { NodeControl, NodeHost, NodeStart } from "../cluster/node_host.ts";
import type { DiskFault } from "../io/faulty_file_system.ts";
import type { StorageJobs } from "../storage/storage_jobs.ts";
import type { FsyncPolicy } from "../storage/store_config.ts";
import { noLinkFaults, type LinkFaults } from "../transport/link_faults.ts";
import type { PortTransport } from "../transport/port_transport.ts";
import { decodeError, type PlainError } from "../util/error_codec.ts";
import { ClosedError } from "../util/errors.ts";
import type { NodeWorkerControl, NodeWorkerData } from "./node_worker_api.ts";

/**
 * A node thread's young generation. Nearly everything a request allocates dies within the
 * request, so a larger nursery means fewer scavenges (each a pause of the node's thread plus work
 * on V8's helper threads), not more survivors. Measured on the CPU guard against V8's default for
 * workers, 4 alternating runs each: 32 MiB gave 3-node gets 0.87x and puts 0.95x the CPU per
 * operation (docs/benchmarks.md, "Node threads' nursery"). Deno accepts the option.
 */
const NODE_HEAP_LIMITS = { maxYoungGenerationSizeMb: 32 } as const;
import { serveStorageJobs } from "./remote_storage_jobs.ts";
import { connect, transfer } from "./typed_rpc.ts";
import { workerFileUrl } from "./worker_file.ts";

export interface WorkerNodeHostOptions {
  /** The directory of node `node`. */
  readonly directoryOf: (node: number) => string;
  readonly fsync: FsyncPolicy;
  readonly memtableBytes: number;
  readonly contextSecret: Uint8Array;
  /** The cluster's shared flush/compaction pool, served to each node over its own port. */
  readonly jobs: StorageJobs;
  /** The main thread's data-plane endpoint: each node is connected to it. */
  readonly transport: PortTransport;
  /**
   * Fresh actors for each start (the cluster core's allocateActors): the first for the node's own
   * writes after an unclean end, the rest for its writes as a fallback.
   */
  readonly freshActors: () => number[];
  /** Called when a node's thread ends without `stopNode` (crashed, terminated or failed). */
  readonly onExit: (node: number) => void;
}

interface Running {
  readonly worker: Worker;
  readonly control: NodeWorkerControl;
  readonly controlPort: MessagePort;
  /** Set by stopNode: the exit that follows is expected. */
  stopping: boolean;
  readonly exited: Promise<void>;
}

export class WorkerNodeHost implements NodeHost {
  readonly #options: WorkerNodeHostOptions;
  readonly #running = new Map<number, Running>();
  #linkFaults: LinkFaults = noLinkFaults;
  /** Disk faults by node: a node started (or restarted) while its disk has one starts with it. */
  readonly #diskFaults = new Map<number, DiskFault>();

  constructor(options: WorkerNodeHostOptions) {
    this.#options = options;
  }

  /** Nodes whose thread runs now. */
  get running(): number[] {
    return [...this.#running.keys()].sort((a, b) => a - b);
  }

  isRunning(node: number): boolean {
    return this.#running.has(node);
  }

  async startNode(node: number, start: NodeStart): Promise<void> {
    if (this.#running.has(node)) return;
    const { port1: mainEnd, port2: nodeMainPort } = new MessageChannel();
    const { port1: jobsEnd, port2: nodeJobsPort } = new MessageChannel();
    const { port1: controlPort, port2: nodeControlPort } = new MessageChannel();
    serveStorageJobs(this.#options.jobs, jobsEnd);
    const workerData: NodeWorkerData = {
      nodeId: node,
      directory: this.#options.directoryOf(node),
      fsync: this.#options.fsync,
      memtableBytes: this.#options.memtableBytes,
      contextSecret: this.#options.contextSecret,
      ...freshActorsOf(this.#options.freshActors()),
      start,
      linkFaults: this.#linkFaults,
      diskFault: this.#diskFaults.get(node) ?? null,
      mainPort: nodeMainPort,
      controlPort: nodeControlPort,
      jobsPort: nodeJobsPort,
    };
    const worker = new Worker(workerFileUrl("node"), { workerData, transferList: [nodeMainPort, nodeJobsPort, nodeControlPort], resourceLimits: NODE_HEAP_LIMITS });
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    // However the thread ends (close, crash, failed start), stop serving it jobs and control.
    void exited.then(() => {
      jobsEnd.close();
      controlPort.close();
    });
    await readyOrFailed(worker, node);
    const running: Running = { worker, control: connect<NodeWorkerControl>(controlPort), controlPort, stopping: false, exited };
    void exited.then(() => {
      if (this.#running.get(node) !== running) return;
      this.#running.delete(node);
      this.#options.transport.disconnect(node);
      if (!running.stopping) this.#options.onExit(node);
    });
    this.#options.transport.connect(node, mainEnd);
    const peers = [...this.#running].filter(([peer]) => peer !== node);
    this.#running.set(node, running);
    await Promise.all(
      peers.map(async ([peer, other]) => {
        const { port1, port2 } = new MessageChannel();
        await Promise.all([
          untilExit(running, node, running.control.connect(peer, transfer(port1, [port1]) as MessagePort)),
          untilExit(other, peer, other.control.connect(node, transfer(port2, [port2]) as MessagePort)),
        ]).catch(() => {}); // a node that died meanwhile is reported by its exit
      }),
    );
  }

  async stopNode(node: number): Promise<void> {
    const running = this.#running.get(node);
    if (!running) return;
    running.stopping = true;
    // The worker exits right after answering; the answer may be lost with the thread.
    await Promise.race([running.control.close().catch(() => {}), running.exited]);
    await running.exited;
  }

  /** Kills node `node`'s thread at once: nothing is closed, unsynced data is lost (a crash). */
  async crash(node: number): Promise<void> {
    const running = this.#running.get(node);
    if (!running) return;
    await running.worker.terminate();
    await running.exited;
  }

  forgetNode(node: number): void {
    for (const [peer, running] of this.#running) if (peer !== node) untilExit(running, peer, running.control.disconnect(node)).catch(() => {});
  }

  control(node: number): NodeControl {
    const running = this.#running.get(node);
    if (!running) {
      const refuse = () => Promise.reject(new ClosedError(`node ${node} is not running`));
      return { stats: refuse, stream: refuse, cleanup: refuse, abortStream: refuse, configure: refuse, peerExited: refuse, compact: refuse };
    }
    const control = running.control;
    return {
      stats: (scan) => untilExit(running, node, control.stats(scan)),
      stream: (plan) => untilExit(running, node, control.stream(plan)),
      cleanup: (ring, keysPerSecond, freshActor) => untilExit(running, node, control.cleanup(ring, keysPerSecond, freshActor)),
      abortStream: (streamId) => untilExit(running, node, control.abortStream(streamId)),
      configure: (settings) => untilExit(running, node, control.configure(settings)),
      peerExited: (peer, generation) => untilExit(running, node, control.peerExited(peer, generation)),
      compact: () => untilExit(running, node, control.compact()),
    };
  }

  /** Link faults for every running node, and for nodes started later. */
  async setLinkFaults(faults: LinkFaults): Promise<void> {
    this.#linkFaults = faults;
    await Promise.all([...this.#running].map(([node, running]) => untilExit(running, node, running.control.setLinkFaults(faults)).catch(() => {})));
  }

  get linkFaults(): LinkFaults {
    return this.#linkFaults;
  }

  /** Switches `node`'s disk fault on (off with null), now and for its later starts. */
  async setDiskFault(node: number, fault: DiskFault | null): Promise<void> {
    if (fault === null) this.#diskFaults.delete(node);
    else this.#diskFaults.set(node, fault);
    const running = this.#running.get(node);
    if (running) await untilExit(running, node, running.control.setDiskFault(fault));
  }

  async pause(node: number, ms: number): Promise<void> {
    const running = this.#running.get(node);
    if (running) await untilExit(running, node, running.control.pause(ms));
  }
}

/** A control call to a node whose thread ends before it answers fails instead of hanging. */
function untilExit<T>(running: Running, node: number, call: Promise<T>): Promise<T> {
  return Promise.race([call, running.exited.then(() => Promise.reject(new ClosedError(`node ${node} stopped before answering`)))]);
}

/** Resolves when the worker's store is open; rejects with its typed error if it failed. */
function readyOrFailed(worker: Worker, node: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = () => {
      worker.off("message", onMessage);
      worker.off("error", onError);
      worker.off("exit", onExit);
    };
    const onMessage = (message: { kind?: string; error?: PlainError }) => {
      if (message?.kind !== "ready" && message?.kind !== "failed") return;
      done();
      if (message.kind === "ready") resolve();
      else reject(decodeError(message.error!)); // the store refused to open: its typed error
    };
    // An error the worker did not catch (a bug): structured clone keeps its name and message.
    const onError = (error: unknown) => {
      done();
      reject(error);
    };
    // A worker's messages arrive before its exit (both runtimes): "failed" wins over the exit.
    const onExit = (code: number) => {
      done();
      reject(new ClosedError(`start node ${node} failed: its thread exited with code ${code}`));
    };
    worker.on("message", onMessage);
    worker.once("error", onError);
    worker.once("exit", onExit);
  });
}

/** Splits a start's fresh actors: the life's own (used after an unclean end) and its fallback ones. */
function freshActorsOf(actors: readonly number[]): { freshActor: number; fallbackActors: readonly number[] } {
  return { freshActor: actors[0]!, fallbackActors: actors.slice(1) };
}
