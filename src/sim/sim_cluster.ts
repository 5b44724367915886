/**
 * A whole cluster in one thread, on virtual time: the cluster core (the main thread's logic) and
 * every node's core, on the simulated network, simulated disks and one virtual clock, with every
 * choice (message delay and loss, disk tears, the context secret) drawn from one seeded PRNG. The
 * same code as the worker-thread cluster; nothing here imports from src/runtime/.
 *
 * Time moves only in `run*`: each step runs the earliest timer or delivers the earliest messages,
 * after letting every promise continuation finish (nextTurn). A seed replays a run exactly.
 */
import type { ClusterConfigChange } from "../cluster/cluster_config.ts";
import { ClusterCore, MAIN_PEER } from "../cluster/cluster_core.ts";
import { FALLBACK_ACTORS_PER_LIFE } from "../node/node_actor.ts";
import { resolveClusterConfig } from "../cluster/cluster_config.ts";
import { firstFreshActor, readClusterFile, writeClusterFile } from "../cluster/cluster_file.ts";
import { nextTurn } from "../io/event_loop_turn.ts";
import type { DiskFault } from "../io/faulty_file_system.ts";
import { createPrng, type Prng } from "../io/prng.ts";
import { SimClock } from "../io/sim_clock.ts";
import { SimFileSystem } from "../io/sim_file_system.ts";
import type { FsyncPolicy } from "../storage/store_config.ts";
import { checkDelay, checkDropRate, checkPartitionGroups, noLinkFaults, type LinkFaults } from "../transport/link_faults.ts";
import { SimNetwork } from "../transport/sim_transport.ts";
import { LoomRangeError } from "../util/errors.ts";
import { createContextSigner } from "../version/context_signer.ts";
import { HashRing } from "../ring/hash_ring.ts";
import { SimNodeHost } from "./sim_node_host.ts";
import { Trace } from "./trace.ts";
import type { WorkloadTarget } from "./workload.ts";

export interface SimClusterOptions {
  readonly seed: number;
  /** Cluster settings (nodes, n, w, r, vnodesPerNode, requestTimeoutMs, ...). @default small ring */
  readonly settings?: ClusterConfigChange;
  /** @default "always" */
  readonly fsync?: FsyncPolicy;
  /** @default 64 KiB */
  readonly memtableBytes?: number;
  /** Network delay range, in virtual ms. @default 1..10 */
  readonly minDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Reopen on the disks a power loss left (`powerLoss()`): cluster.json and every node's store. */
  readonly disks?: SimDisks;
  /** A negative control: the cluster forgets which nodes owe a ring change's cleanup. @default false */
  readonly unsafeForgetCleanups?: boolean;
}

/** What survives a power loss: the main thread's disk and every node's. */
export interface SimDisks {
  readonly main: SimFileSystem;
  readonly nodes: ReadonlyMap<number, SimFileSystem>;
}

/** Where the simulated main thread keeps cluster.json, on its own disk. */
export const SIM_CLUSTER_DIRECTORY = "/cluster";

export class SimCluster {
  readonly seed: number;
  readonly clock: SimClock;
  readonly network: SimNetwork;
  readonly core: ClusterCore;
  readonly host: SimNodeHost;
  readonly trace = new Trace();
  /** The main thread's disk (cluster.json). */
  readonly mainDisk: SimFileSystem;
  /** Draws of the workload and the fault schedule: forks of the seed, independent of the network's. */
  readonly prng: Prng;
  #linkFaults: LinkFaults = noLinkFaults;
  readonly #pausedUntil = new Map<number, number>();
  readonly #diskFaults = new Map<number, DiskFault>();
  /** Nodes that had a disk fault since their last start: their store may have failed for good. */
  readonly #sawDiskFault = new Set<number>();

  private constructor(parts: { seed: number; clock: SimClock; network: SimNetwork; core: ClusterCore; host: SimNodeHost; mainDisk: SimFileSystem; prng: Prng; trace: Trace }) {
    this.seed = parts.seed;
    this.clock = parts.clock;
    this.network = parts.network;
    this.core = parts.core;
    this.host = parts.host;
    this.mainDisk = parts.mainDisk;
    this.prng = parts.prng;
    this.trace = parts.trace;
  }

  /** The ring `members` with `vnodesPerNode` each would form (what a ring change moves to). */
  static ringOf(members: readonly number[], vnodesPerNode: number): HashRing {
    return HashRing.build({ nodes: members, vnodesPerNode });
  }

  static async create(options: SimClusterOptions): Promise<SimCluster> {
    const root = createPrng(options.seed);
    const networkPrng = root.fork();
    const diskPrng = root.fork();
    const secret = new Uint8Array(16);
    for (let index = 0; index < secret.length; index++) secret[index] = root.nextInt(256);
    const prng = root.fork();
    const clock = new SimClock();
    const trace = new Trace();
    const network = new SimNetwork({ prng: networkPrng, minDelayMs: options.minDelayMs ?? 1, maxDelayMs: options.maxDelayMs ?? 10 });
    const signer = createContextSigner(secret);
    const mainDisk = options.disks?.main ?? new SimFileSystem(diskPrng.fork());
    mainDisk.makeDirectory(SIM_CLUSTER_DIRECTORY);
    const stored = options.disks ? readClusterFile(mainDisk, SIM_CLUSTER_DIRECTORY) : undefined;
    const config = stored?.config ?? resolveClusterConfig({ nodes: 5, vnodesPerNode: 16, ...options.settings });
    const members = stored ? [...stored.members] : Array.from({ length: config.nodes }, (_, node) => node);
    let core: ClusterCore | undefined;
    const host = new SimNodeHost({
      clock,
      network,
      signer,
      prng: diskPrng,
      fsync: options.fsync ?? "always",
      memtableBytes: options.memtableBytes ?? 64 * 1024,
      onExit: (node) => core?.nodeDown(node, "crashed"),
      freshActors: () => core!.allocateActors(1 + FALLBACK_ACTORS_PER_LIFE),
      observe: (node, from, message) => trace.record(clock.nowMs(), from, node, message.type),
      ...(options.disks ? { disks: options.disks.nodes } : {}),
    });
    const main = network.endpoint(MAIN_PEER);
    const state = stored ?? { config, members, nextNodeId: config.nodes, nextActor: firstFreshActor, pendingCleanups: [] };
    core = new ClusterCore({
      state,
      host,
      transport: {
        self: MAIN_PEER,
        send: (to, message) => main.send(to, message),
        onMessage: (handler) =>
          main.onMessage((from, message) => {
            trace.record(clock.nowMs(), from, MAIN_PEER, message.type);
            handler(from, message);
          }),
        close: () => main.close(),
        stats: () => main.stats(),
      },
      clock,
      signer,
      save: (saved) => writeClusterFile(mainDisk, SIM_CLUSTER_DIRECTORY, saved),
      ...(options.unsafeForgetCleanups ? { unsafeForgetCleanups: true } : {}),
    });
    const cluster = new SimCluster({ seed: options.seed, clock, network, core, host, mainDisk, prng, trace });
    for (const node of members) await cluster.#settle(core.startNode(node));
    writeClusterFile(mainDisk, SIM_CLUSTER_DIRECTORY, state);
    return cluster;
  }

  /** Runs the simulation until `work` settles; rejects with its error. */
  async #settle<T>(work: Promise<T>): Promise<T> {
    let done = false;
    const result = work.finally(() => {
      done = true;
    });
    result.catch(() => {});
    await this.runUntil(() => done);
    return result;
  }

  /** Runs `work` (a call on the core, a client's operation) to its end on virtual time. */
  run<T>(work: Promise<T>): Promise<T> {
    return this.#settle(work);
  }

  /**
   * Runs events until `done()` holds, time passes `untilMs` (when given), or nothing is left to
   * run. Returns whether `done()` held.
   */
  async runUntil(done: () => boolean, untilMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    for (;;) {
      await nextTurn();
      if (done()) return true;
      const timerMs = this.clock.nextDeadlineMs();
      const messageMs = this.network.nextDeliveryMs();
      const nextMs = Math.min(timerMs ?? Number.POSITIVE_INFINITY, messageMs ?? Number.POSITIVE_INFINITY);
      if (nextMs === Number.POSITIVE_INFINITY) {
        await nextTurn();
        if (done()) return true;
        if (this.clock.nextDeadlineMs() === undefined && this.network.nextDeliveryMs() === undefined) return false;
        continue;
      }
      if (nextMs > untilMs) {
        this.clock.advance(untilMs - this.clock.nowMs());
        this.network.deliverUntil(Math.max(this.network.nowMs(), untilMs));
        return done();
      }
      if (timerMs !== undefined && timerMs <= nextMs) {
        // The network's clock follows: a message sent by the timer leaves at the timer's time.
        this.network.deliverUntil(Math.max(this.network.nowMs(), timerMs));
        // The messages just delivered may have cleared that timer: then look again, or the clock
        // would jump to a later timer past messages still due before it.
        if (this.clock.nextDeadlineMs() === timerMs) this.clock.runNext();
      } else {
        this.clock.advance(nextMs - this.clock.nowMs());
        this.network.deliverUntil(nextMs);
      }
    }
  }

  /** Runs for `ms` of virtual time. */
  async runFor(ms: number): Promise<void> {
    await this.runUntil(() => false, this.clock.nowMs() + ms);
  }

  /** Resolves after `ms` of virtual time (for a client's think time). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.setTimer(ms, resolve));
  }

  get linkFaults(): LinkFaults {
    return this.#linkFaults;
  }

  /** Nodes paused now. */
  paused(): number[] {
    return [...this.#pausedUntil].filter(([, untilMs]) => untilMs > this.clock.nowMs()).map(([node]) => node);
  }

  diskFaults(): Map<number, DiskFault> {
    return new Map(this.#diskFaults);
  }

  #setLinkFaults(faults: LinkFaults): void {
    this.#linkFaults = faults;
    this.network.setLinkFaults(faults, MAIN_PEER);
  }

  /** The fault API of `Cluster.faults`, with the same meaning, on virtual time. */
  readonly faults = {
    crash: (node: number): void => {
      this.core.checkNode("crash", node);
      this.#pausedUntil.delete(node);
      this.host.crash(node);
    },
    restart: async (node: number): Promise<void> => {
      this.core.checkNode("restart", node);
      // As the worker threads do: a running node is stopped first; the disk fault stays (a start
      // with one on fails with the store's IoError and leaves the node down).
      if (this.host.isRunning(node)) {
        this.#pausedUntil.delete(node);
        await this.core.stopForRestart(node);
      }
      await this.core.startNode(node);
      if (!this.#diskFaults.has(node)) this.#sawDiskFault.delete(node);
    },
    wipe: async (node: number): Promise<void> => {
      this.core.checkNode("wipe", node);
      this.#pausedUntil.delete(node);
      this.host.wipe(node);
      // A new, empty disk: the old one's fault is gone with it.
      this.#diskFaults.delete(node);
      this.host.setDiskFault(node, null);
      this.core.wiped(node);
      await this.faults.restart(node);
    },
    pause: (node: number, ms: number): void => {
      this.core.checkNode("pause", node);
      checkDelay("pause", "ms", ms);
      if (ms < 1) throw new LoomRangeError(`pause failed: ms is ${ms}, must be at least 1`);
      if (!this.host.isRunning(node)) return;
      const untilMs = this.clock.nowMs() + ms;
      this.#pausedUntil.set(node, untilMs);
      this.host.pause(node);
      this.core.setSilent(node, true);
      this.clock.setTimer(ms, () => {
        if (this.#pausedUntil.get(node) !== untilMs) return;
        this.#pausedUntil.delete(node);
        this.core.setSilent(node, false);
        this.host.resume(node);
      });
    },
    partition: (...groups: number[][]): void => {
      this.#setLinkFaults({ ...this.#linkFaults, groups: checkPartitionGroups("partition", groups, [...this.core.members]) });
    },
    heal: (): void => {
      this.#setLinkFaults(noLinkFaults);
    },
    dropRate: (rate: number): void => {
      this.#setLinkFaults({ ...this.#linkFaults, dropRate: checkDropRate("drop rate", rate) });
    },
    delay: (ms: number, jitterMs = 0): void => {
      this.#setLinkFaults({ ...this.#linkFaults, delayMs: checkDelay("delay", "ms", ms), jitterMs: checkDelay("delay", "jitterMs", jitterMs) });
    },
    diskFault: (node: number, fault: DiskFault | null): void => {
      this.core.checkNode("disk fault", node);
      if (fault === null) this.#diskFaults.delete(node);
      else {
        this.#diskFaults.set(node, fault);
        this.#sawDiskFault.add(node);
      }
      this.host.setDiskFault(node, fault);
    },
  };

  /** Hints held by every running node together (their hint stores' keys). */
  async hintsHeld(): Promise<number> {
    let held = 0;
    for (const node of this.host.running) {
      const stats = await this.host.control(node).stats(false);
      for (const target of stats.hints.held) held += target.keys;
    }
    return held;
  }

  /** The cluster as the workload drives it (workload.ts). */
  workloadTarget(): WorkloadTarget {
    const core = this.core;
    return {
      put: (key, value, options) => this.core.put(key, value, options),
      delete: (key, options) => this.core.delete(key, options),
      get: (key) => this.core.get(key),
      sleep: (ms) => this.sleep(ms),
      get members() {
        return core.members;
      },
      isRunning: (node) => this.host.isRunning(node),
      faults: this.faults,
      record: (text) => this.trace.recordText(text),
    };
  }

  /** Power lost: every node and the main thread stop at once; the disks keep what was synced. */
  powerLoss(): SimDisks {
    const nodes = this.host.powerLoss();
    this.mainDisk.crash();
    return { main: this.mainDisk, nodes };
  }

  /** Ends every fault: heals the network, ends pauses, restarts crashed nodes and nodes with disk faults. */
  async healAll(): Promise<void> {
    this.faults.heal();
    for (const node of [...this.#pausedUntil.keys()]) {
      this.#pausedUntil.delete(node);
      this.core.setSilent(node, false);
      this.host.resume(node);
    }
    for (const node of [...this.#diskFaults.keys()]) this.faults.diskFault(node, null);
    for (const node of this.#sawDiskFault) this.host.crash(node); // a store that saw a disk failure stays failed until restarted
    for (const node of this.core.members) if (!this.host.isRunning(node)) await this.run(this.faults.restart(node));
  }
}
