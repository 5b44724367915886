/**
 * Nodes in the simulator: every node's core runs in this thread, on its own simulated disk, its
 * endpoint of the simulated network and the shared virtual clock, each seen through the gates of
 * its current life (node_incarnation.ts). Each life is the NodeLife the worker threads run (src/node/node_life.ts).
 *
 * Faults, with the meaning the worker threads give them: `crash` ends a life (the disk loses what
 * was not synced, the network drops what was in flight), `restart` starts a new one on the same
 * disk, `wipe` on an empty one, `pause` holds a life's timers and messages, disk faults go through
 * a FaultyFileSystem. The cluster core learns of a crash as it would of a thread's exit (`onExit`).
 */
import type { NodeControl, NodeHost, NodeStart } from "../cluster/node_host.ts";
import type { Clock } from "../io/clock.ts";
import { FaultyFileSystem, type DiskFault } from "../io/faulty_file_system.ts";
import type { Prng } from "../io/prng.ts";
import { SimFileSystem } from "../io/sim_file_system.ts";
import { NodeLife } from "../node/node_life.ts";
import { InlineStorageJobs } from "../storage/storage_jobs.ts";
import type { FsyncPolicy } from "../storage/store_config.ts";
import type { Message } from "../transport/message_types.ts";
import type { SimNetwork } from "../transport/sim_transport.ts";
import { ClosedError } from "../util/errors.ts";
import type { ContextSigner } from "../version/context_signer.ts";
import { NodeIncarnation } from "./node_incarnation.ts";

/** Where every simulated node keeps its store, on its own disk. */
export const SIM_NODE_DIRECTORY = "/node";

interface Life {
  readonly incarnation: NodeIncarnation;
  readonly life: NodeLife;
}

export interface SimNodeHostOptions {
  readonly clock: Clock;
  readonly network: SimNetwork;
  readonly signer: ContextSigner;
  /** Seeds each node's disk (torn writes, crash choices). */
  readonly prng: Prng;
  readonly fsync: FsyncPolicy;
  readonly memtableBytes: number;
  /**
   * Fresh actors for each start (the cluster core's allocateActors): the first for the node's own
   * writes after an unclean end, the rest for its writes as a fallback.
   */
  readonly freshActors: () => number[];
  /** A node's life ended without `stopNode` (a crash): the core marks it down. */
  readonly onExit: (node: number) => void;
  /** Sees each message a node handles (the run's trace). */
  readonly observe?: (node: number, from: number, message: Message) => void;
  /** Disks that survived a power loss, by node (a reopened cluster starts on them). */
  readonly disks?: ReadonlyMap<number, SimFileSystem>;
}

export class SimNodeHost implements NodeHost {
  readonly #options: SimNodeHostOptions;
  readonly #disks = new Map<number, { readonly disk: SimFileSystem; readonly faulty: FaultyFileSystem }>();
  readonly #lives = new Map<number, Life>();
  /**
   * Called as the cluster asks a node for a ring change's cleanup, before the node starts it: a
   * workload strikes the node there (the ring-back workload crashes it or fails its disk).
   */
  onCleanup: ((node: number) => void) | undefined;

  constructor(options: SimNodeHostOptions) {
    this.#options = options;
    for (const [node, disk] of options.disks ?? []) this.#disks.set(node, { disk, faulty: new FaultyFileSystem(disk) });
  }

  isRunning(node: number): boolean {
    return this.#lives.has(node);
  }

  get running(): number[] {
    return [...this.#lives.keys()].sort((a, b) => a - b);
  }

  /** The store and the core of running node `node` (for checks that read a replica's own state). */
  lifeOf(node: number): NodeLife | undefined {
    return this.#lives.get(node)?.life;
  }

  #disk(node: number): { disk: SimFileSystem; faulty: FaultyFileSystem } {
    let entry = this.#disks.get(node);
    if (!entry) {
      const disk = new SimFileSystem(this.#options.prng.fork());
      entry = { disk, faulty: new FaultyFileSystem(disk) };
      this.#disks.set(node, entry);
    }
    return entry;
  }

  async startNode(node: number, start: NodeStart): Promise<void> {
    if (this.#lives.has(node)) return;
    const incarnation = new NodeIncarnation(node);
    const { faulty } = this.#disk(node);
    const fs = incarnation.fileSystem(faulty);
    const clock = incarnation.clock(this.#options.clock);
    fs.makeDirectory(SIM_NODE_DIRECTORY);
    const observe = this.#options.observe;
    const fresh = this.#options.freshActors();
    const life = await NodeLife.open({
      nodeId: node,
      directory: SIM_NODE_DIRECTORY,
      fs,
      clock,
      jobs: new InlineStorageJobs(fs),
      fsync: this.#options.fsync,
      memtableBytes: this.#options.memtableBytes,
      // The node's endpoint opens once its stores are: nothing can arrive before the core listens.
      connect: () => incarnation.transport(this.#options.network.restart(node), observe && ((from, message) => observe(node, from, message))),
      signer: this.#options.signer,
      prng: this.#options.prng.fork(),
      generation: start.generation,
      settings: start,
      gossipTable: start.gossipTable,
      cleanup: start.cleanup,
      freshActor: fresh[0]!,
      fallbackActors: fresh.slice(1),
      treeScansInPool: false,
    });
    this.#lives.set(node, { incarnation, life });
  }

  async stopNode(node: number): Promise<void> {
    const life = this.#lives.get(node);
    if (!life) return;
    this.#lives.delete(node);
    await life.incarnation.awake();
    await life.life.close();
    life.incarnation.kill();
    this.#options.network.crash(node);
  }

  /** Ends node `node`'s life at once: its disk keeps only what was synced; the core hears of the exit. */
  crash(node: number): void {
    const life = this.#lives.get(node);
    if (!life) return;
    this.#lives.delete(node);
    life.incarnation.kill();
    this.#options.network.crash(node);
    this.#disk(node).disk.crash();
    this.#options.onExit(node);
  }

  /**
   * Power loss: every node's life ends at once and every disk keeps only what was synced. Returns
   * the disks, for a cluster reopened on them.
   */
  powerLoss(): Map<number, SimFileSystem> {
    for (const [node, life] of this.#lives) {
      life.incarnation.kill();
      this.#options.network.crash(node);
    }
    this.#lives.clear();
    const disks = new Map<number, SimFileSystem>();
    for (const [node, { disk }] of this.#disks) {
      disk.crash();
      disks.set(node, disk);
    }
    return disks;
  }

  /** Crashes `node` if it runs, and gives it an empty disk: it starts again with nothing. */
  wipe(node: number): void {
    this.crash(node);
    const { disk } = this.#disk(node);
    disk.removeTree(SIM_NODE_DIRECTORY);
    disk.syncDirectory("/");
  }

  pause(node: number): void {
    this.#lives.get(node)?.incarnation.pause();
  }

  resume(node: number): void {
    this.#lives.get(node)?.incarnation.resume();
  }

  setDiskFault(node: number, fault: DiskFault | null): void {
    this.#disk(node).faulty.setFault(fault);
  }

  forgetNode(_node: number): void {
    // The simulated network needs no port torn down: a stopped node's endpoint is closed.
  }

  control(node: number): NodeControl {
    const life = this.#lives.get(node);
    if (!life) {
      const refuse = () => Promise.reject(new ClosedError(`node ${node} is not running`));
      return { stats: refuse, stream: refuse, cleanup: refuse, abortStream: refuse, configure: refuse, peerExited: refuse, compact: refuse };
    }
    // As a worker would: a paused node answers once it resumes, a dead one never (the call fails).
    const call = <T>(work: () => Promise<T> | T): Promise<T> =>
      Promise.race([
        life.incarnation.awake().then(() => {
          if (life.incarnation.dead) throw new ClosedError(`node ${node} stopped before answering`);
          return work();
        }),
        life.incarnation.died().then(() => Promise.reject(new ClosedError(`node ${node} stopped before answering`))),
      ]);
    return {
      stats: (scan) => call(() => life.life.core.stats({ scan })),
      stream: (plan) => call(() => life.life.core.streams.streamKeys(plan)),
      cleanup: (ring, keysPerSecond, freshActor) => {
        this.onCleanup?.(node);
        return call(() => life.life.core.cleanup(ring, keysPerSecond, freshActor));
      },
      abortStream: (streamId) => call(() => life.life.core.streams.abortStream(streamId)),
      configure: (settings) => call(() => life.life.core.configure(settings)),
      peerExited: (peer, generation) => call(() => life.life.core.peerExited(peer, generation)),
      compact: () => call(() => life.life.core.compact()),
    };
  }
}
