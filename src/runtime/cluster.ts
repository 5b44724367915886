/**
 * The cluster as the caller sees it: `createCluster()` opens a data directory, starts one worker
 * thread per node (each owning a Store under `dataDir/node-<id>`), and hands every request to the
 * cluster core (src/cluster/cluster_core.ts), which routes it to the first live replica of its
 * key. This file is the shell: the data directory and its files, the worker threads
 * (worker_node_host.ts), the shared job pool, fault injection and closing. The protocol logic is
 * in the core, which the simulator drives with the same code.
 *
 * Thread contract: a Cluster is used from the thread that created it.
 */
import type { ClusterConfig, ClusterConfigChange } from "../cluster/cluster_config.ts";
import type { MemberView } from "../membership/gossip.ts";
import {
  ClusterCore,
  type ClusterStats,
  type MembershipChange,
  type GetResult,
  type RequestOptions,
  type RingChangeReport,
  type WriteOptions,
  type WriteResult,
} from "../cluster/cluster_core.ts";
import { FALLBACK_ACTORS_PER_LIFE } from "../node/node_actor.ts";
import { diskFaults, type DiskFault } from "../io/faulty_file_system.ts";
import { RealClock } from "../io/real_clock.ts";
import { joinPath } from "../io/file_system.ts";
import { RealFileSystem } from "../io/real_file_system.ts";
import { MAIN_PEER } from "../node/node_messages.ts";
import type { KeyInput, ValueInput } from "../storage/store_input.ts";
import { resolveStoreConfig, type FsyncPolicy } from "../storage/store_config.ts";
import { checkDelay, checkDropRate, checkPartitionGroups, type LinkFaults } from "../transport/link_faults.ts";
import { PortTransport } from "../transport/port_transport.ts";
import { describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import { createContextSigner } from "../version/context_signer.ts";
import { checkDataDirOption, ClusterDirectory } from "./cluster_directory.ts";
import { CONTEXT_SECRET_FILE, loadContextSecret } from "./cluster_secret.ts";
import { PiscinaStorageJobs } from "./piscina_storage_jobs.ts";
import { WorkerNodeHost } from "./worker_node_host.ts";

export type { GetResult, MembershipChange, RequestOptions, RingChangeReport, WriteOptions, WriteResult } from "../cluster/cluster_core.ts";
export type { MemberView } from "../membership/gossip.ts";

export interface CreateClusterOptions extends Partial<Omit<ClusterConfig, "gossip" | "antiEntropy" | "handoff">> {
  /** Hinted handoff settings (any subset). */
  readonly handoff?: Partial<ClusterConfig["handoff"]>;
  /** Gossip failure detection settings (any subset). */
  readonly gossip?: Partial<ClusterConfig["gossip"]>;
  /** Anti-entropy settings (any subset). */
  readonly antiEntropy?: Partial<ClusterConfig["antiEntropy"]>;
  /**
   * Where the nodes keep their data: created if missing, locked while the cluster is open (one
   * cluster per directory, in any process). @default a new temporary directory
   */
  readonly dataDir?: string;
  /** Commit-log fsync policy of every node (see the storage engine). @default "batch" */
  readonly fsync?: FsyncPolicy;
  /** Memtable arena per node. @default 16 MiB */
  readonly memtableBytes?: number;
}

/** The faults in force, as stats() reports them. */
export interface FaultState {
  /** Nodes whose thread is not running (crashed, wiped and not restarted). */
  readonly crashed: number[];
  /** Nodes paused now, and until when (ms on the main thread's monotonic clock). */
  readonly paused: { readonly node: number; readonly untilMs: number }[];
  readonly link: LinkFaults;
  /** Disk faults switched on, per node. */
  readonly disk: { readonly node: number; readonly fault: DiskFault }[];
}

/** Longest pause `faults.pause` accepts, in ms. */
const PAUSE_MS_MAX = 60_000;

export class Cluster {
  readonly dataDir: string;
  /** Holds dataDir/LOCK until close; writes cluster.json; breaks the store locks crashed nodes left. */
  readonly #directory: ClusterDirectory;
  readonly #core: ClusterCore;
  readonly #host: WorkerNodeHost;
  readonly #transport: PortTransport;
  readonly #jobs: PiscinaStorageJobs;
  readonly #clock: RealClock;
  readonly #paused = new Map<number, number>();
  readonly #diskFaults = new Map<number, DiskFault>();
  readonly #unsubscribe = new Map<(change: MembershipChange) => void, () => void>();
  /** Restarts under way, by node: a second restart of the node joins the first. */
  readonly #restarts = new Map<number, Promise<void>>();
  #closing: Promise<void> | null = null;

  private constructor(parts: { directory: ClusterDirectory; core: ClusterCore; host: WorkerNodeHost; transport: PortTransport; jobs: PiscinaStorageJobs; clock: RealClock }) {
    this.#directory = parts.directory;
    this.dataDir = parts.directory.path;
    this.#core = parts.core;
    this.#host = parts.host;
    this.#transport = parts.transport;
    this.#jobs = parts.jobs;
    this.#clock = parts.clock;
  }

  /**
   * Starts the nodes; with no options, a 5-node cluster on a temporary directory. Everything is
   * validated before anything is written (settings, fsync, memtableBytes, the data directory and
   * its cluster.json); a create that fails removes what it created and releases the lock.
   * Errors: LoomTypeError/LoomRangeError (options), IoError naming the path (the file system
   * refused the data directory), LockedError (another cluster has it open, or a node's store is
   * open elsewhere), CorruptionError (a damaged cluster.json, context secret or store).
   */
  static async create(options: CreateClusterOptions = {}): Promise<Cluster> {
    if (typeof options !== "object" || options === null) {
      throw new LoomTypeError(`create cluster failed: options must be an object, got ${describe(options)}`);
    }
    const { dataDir: requested, fsync = "batch", memtableBytes = 16 * 1024 * 1024, ...settings } = options;
    checkDataDirOption(requested);
    resolveStoreConfig({ fsync, memtableBytes }, "create cluster"); // what every node's store would refuse
    const fs = new RealFileSystem();
    const { directory, stored } = ClusterDirectory.open(fs, requested, settings);
    directory.noteNewNodes(stored.members);
    // A create that fails removes a secret it made: no context was signed with it.
    const secretPath = joinPath(directory.path, CONTEXT_SECRET_FILE);
    const secretExisted = fs.exists(secretPath);
    const abandon = () => {
      if (!secretExisted) fs.remove(secretPath);
      directory.abandon();
    };
    let contextSecret: Uint8Array;
    try {
      contextSecret = loadContextSecret({ fs, directory: directory.path });
    } catch (error) {
      abandon();
      throw error;
    }
    const clock = new RealClock();
    const transport = new PortTransport({ self: MAIN_PEER });
    // One flush/compaction pool for every node, as many threads as a store runs jobs side by side.
    const jobs = new PiscinaStorageJobs({ threads: 2 });
    let core: ClusterCore | undefined;
    const host = new WorkerNodeHost({
      directoryOf: (node) => directory.nodeDirectory(node),
      fsync,
      memtableBytes,
      contextSecret,
      jobs,
      transport,
      onExit: (node) => core?.nodeDown(node, "crashed"),
      freshActors: () => core!.allocateActors(1 + FALLBACK_ACTORS_PER_LIFE),
    });
    core = new ClusterCore({
      state: stored,
      host,
      transport,
      clock,
      signer: createContextSigner(contextSecret),
      // cluster.json is written once every node has started (a failed create leaves none).
      save: (state) => {
        if (started) directory.write(state);
      },
    });
    let started = false;
    try {
      for (const node of stored.members) await core.startNode(node);
      started = true;
      core.persist();
    } catch (error) {
      for (const node of host.running) await host.stopNode(node);
      transport.close();
      await jobs.close();
      abandon();
      throw error;
    }
    return new Cluster({ directory, core, host, transport, jobs, clock });
  }

  get config(): ClusterConfig {
    return this.#core.config;
  }

  /**
   * Writes `value` under `key`; resolves with the new version's context (and the node that
   * coordinated the write) once W replicas have it durably. Every failure is a rejection whose
   * error says whether the write may have been applied (`outcome`).
   */
  put(key: KeyInput, value: ValueInput, options?: WriteOptions): Promise<WriteResult> {
    return this.#core.put(key, value, options);
  }

  /** Deletes `key` (a tombstone, versioned like any write: pass the context you read). */
  delete(key: KeyInput, options?: WriteOptions): Promise<WriteResult> {
    return this.#core.delete(key, options);
  }

  /** Reads `key` from R replicas: every sibling value, newest first, and the causal context. */
  get(key: KeyInput, options?: RequestOptions): Promise<GetResult> {
    return this.#core.get(key, options);
  }

  /**
   * One context covering everything each of `contexts` covers, all read or returned for `key` ("" is
   * the empty context): a client whose writes to the key ran side by side passes it with its next
   * write, which then supersedes them all. Throws LoomTypeError on a bad context, as a write would.
   */
  joinContexts(key: KeyInput, contexts: readonly string[]): string {
    return this.#core.joinContexts(key, contexts);
  }

  /**
   * What each replica of `key` holds itself: no quorum, no merge, no read repair. For inspection
   * (is every replica up to date?) and tests; values are newest first, [] when absent or deleted,
   * null when the replica is down or did not answer within the request timeout.
   */
  replicaValues(key: KeyInput): Promise<{ node: number; values: Uint8Array[] | null }[]> {
    return this.#core.replicaValues(key);
  }

  /** The nodes that hold `key`, in preference order. */
  preferenceList(key: KeyInput): number[] {
    return this.#core.preferenceList(key);
  }

  /**
   * Membership events: `listener` is called with each change of a node's status as the main
   * thread sees it (`{ node, status: "up" | "down", generation, atMs, source }`): gossip (its
   * heartbeat stopped rising for gossip.failAfterMs, or rose again), its thread's exit, or a start.
   */
  on(event: "membership", listener: (change: MembershipChange) => void): this {
    if (event !== "membership") throw new LoomTypeError(`on failed: unknown event ${describe(event)}, expected "membership"`);
    if (typeof listener !== "function") throw new LoomTypeError(`on failed: listener must be a function, got ${describe(listener)}`);
    this.#unsubscribe.set(listener, this.#core.onMembership(listener));
    return this;
  }

  off(event: "membership", listener: (change: MembershipChange) => void): this {
    this.#unsubscribe.get(listener)?.();
    this.#unsubscribe.delete(listener);
    return this;
  }

  /** Each member's status and gossip generation as the main thread sees them. */
  membership(): MemberView[] {
    return this.#core.membership();
  }

  /** The ring: nodes, virtual nodes per node, and the share of the key space each node owns. */
  ring(): ReturnType<ClusterCore["ring"]> {
    return this.#core.ring();
  }

  /**
   * Per node: requests coordinated, latency percentiles, memtable and table sizes, records, keys
   * streamed; the cluster's last ring changes with the keys each moved; and the faults in force.
   * With `{ keys: true }` every node also scans its store to count live and deleted keys and keys
   * with siblings (a full read of every node: for inspection, not for a dashboard that polls).
   * Paused nodes are left out until they answer again.
   */
  async stats(options: { keys?: boolean } = {}): Promise<ClusterStats & { faults: FaultState }> {
    if (typeof options !== "object" || options === null) throw new LoomTypeError(`stats failed: options must be an object, got ${describe(options)}`);
    if (options.keys !== undefined && typeof options.keys !== "boolean") throw new LoomTypeError(`stats failed: keys must be true or false, got ${describe(options.keys)}`);
    const stats = await this.#core.stats(options);
    return { ...stats, faults: this.#faultState() };
  }

  /**
   * A major compaction on every node that is up: each merges its tables into one, so keys whose
   * tombstones anti-entropy purged leave the files at once rather than at the next compaction.
   * Resolves with the nodes compacted. Background compaction does the same over time.
   */
  compact(): Promise<number[]> {
    return this.#core.compact();
  }

  #faultState(): FaultState {
    const nowMs = this.#clock.nowMs();
    return {
      crashed: this.#core.members.filter((node) => !this.#host.isRunning(node)),
      paused: [...this.#paused].filter(([, untilMs]) => untilMs > nowMs).map(([node, untilMs]) => ({ node, untilMs })),
      link: this.#host.linkFaults,
      disk: [...this.#diskFaults].map(([node, fault]) => ({ node, fault })),
    };
  }

  /**
   * Changes settings while traffic runs; resolves with the new configuration. W, R, the pruning
   * threshold and the request timeout take effect for the next request (requests carry them),
   * at once even while keys move (then checked against both rings). Changing N or virtual nodes
   * per node moves the keys whose replicas change to their new replicas first (streamed between
   * the nodes), then switches the ring; reads and writes go on meanwhile. Invalid settings are
   * refused (LoomTypeError, LoomRangeError) and change nothing; a move that cannot finish (a node
   * stops answering) rejects with RingChangeError and leaves the old ring in force.
   */
  configure(change: ClusterConfigChange): Promise<ClusterConfig> {
    return this.#core.configure(change);
  }

  /** Starts a new node (the next unused id), streams to it the keys it now replicates, then adds it to the ring. */
  addNode(): Promise<number> {
    return this.#core.addNode();
  }

  /**
   * Streams the keys `node` holds to the nodes that replicate them once it is gone, takes it off the
   * ring, then stops its thread. Its directory is left on disk. Refused when the remaining nodes
   * could not hold N replicas.
   */
  removeNode(node: number): Promise<void> {
    const wasDown = typeof node === "number" && this.#core.members.includes(node) && !this.#host.isRunning(node);
    return this.#core.removeNode(node).then(() => {
      // A node removed while down leaves its store locked, as its crash did: free it.
      if (wasDown) this.#directory.breakNodeLock(node);
    });
  }

  /**
   * Fault injection, for tests, benchmarks and anyone who wants to see what the cluster does when
   * things break. Faults act on the worker threads and the links between them; the router learns
   * of them only as it would in production (a thread's exit, a timeout), never from here.
   *
   * - `crash(node)`: terminates the node's thread at once; its memtable and unsynced log are lost,
   *   its files stay. `restart(node)` starts it again on its directory (the store replays its log);
   *   a node still running is stopped first (its store closes), as an operator's restart would.
   * - `wipe(node)`: permanent loss: terminates the thread, deletes the node's directory, and starts
   *   the node again empty (a replaced disk). Only read repair fills it until anti-entropy exists.
   * - `pause(node, ms)`: the thread stops for `ms` (it answers nothing, fires no timer, keeps its
   *   state), then carries on with what queued up meanwhile.
   * - `partition(...groups)` / `heal()`: cuts the links between groups of nodes (nodes named in no
   *   group form one more group); the main thread, the client, still reaches every node. `heal()`
   *   clears every link fault: partitions, drops and delays.
   * - `dropRate(p)`: each message between two nodes is lost with probability p.
   * - `delay(ms, jitterMs)`: each message between two nodes waits ms plus up to jitterMs.
   * - `diskFault(node, kind)`: `"fsync"` makes every fsync of the node's store fail, `"full"` every
   *   append (a full disk); `null` clears it. A store that saw a failure refuses writes and reads;
   *   its node tells the cluster at once and serves nothing (the others take its place: sloppy
   *   quorum) until it restarts on a healthy disk. The fault outlives restarts (it is the disk's):
   *   a restart with it on fails and leaves the node down; a wipe (a new disk) clears it.
   */
  readonly faults = {
    crash: async (node: number): Promise<void> => {
      this.#core.checkNode("crash", node);
      if (!this.#host.isRunning(node)) return;
      await this.#host.crash(node);
      await this.#core.nodeDown(node, "crashed"); // resolves once its peers know
    },
    restart: async (node: number): Promise<void> => {
      this.#core.checkNode("restart", node);
      await this.#restart(node, false);
    },
    wipe: async (node: number): Promise<void> => {
      this.#core.checkNode("wipe", node);
      if (this.#host.isRunning(node)) {
        this.#core.nodeDown(node, "was wiped");
        await this.#host.crash(node);
      }
      await this.#restart(node, true);
    },
    pause: async (node: number, ms: number): Promise<void> => {
      this.#core.checkNode("pause", node);
      if (typeof ms !== "number" || !Number.isInteger(ms)) throw new LoomTypeError(`pause failed: ms must be an integer, got ${describe(ms)}`);
      if (ms < 1 || ms > PAUSE_MS_MAX) throw new LoomRangeError(`pause failed: ms is ${ms}, must be between 1 and ${PAUSE_MS_MAX}`);
      if (!this.#host.isRunning(node)) return;
      this.#paused.set(node, this.#clock.nowMs() + ms);
      this.#core.setSilent(node, true);
      this.#clock.setTimer(ms, () => {
        if ((this.#paused.get(node) ?? 0) <= this.#clock.nowMs()) {
          this.#paused.delete(node);
          this.#core.setSilent(node, false);
        }
      });
      await this.#host.pause(node, ms);
    },
    partition: async (...groups: number[][]): Promise<void> => {
      const checked = checkPartitionGroups("partition", groups, this.#core.members);
      await this.#host.setLinkFaults({ ...this.#host.linkFaults, groups: checked });
    },
    heal: async (): Promise<void> => {
      await this.#host.setLinkFaults({ groups: null, dropRate: 0, delayMs: 0, jitterMs: 0 });
    },
    dropRate: async (rate: number): Promise<void> => {
      await this.#host.setLinkFaults({ ...this.#host.linkFaults, dropRate: checkDropRate("drop rate", rate) });
    },
    delay: async (ms: number, jitterMs = 0): Promise<void> => {
      const delayMs = checkDelay("delay", "ms", ms);
      await this.#host.setLinkFaults({ ...this.#host.linkFaults, delayMs, jitterMs: checkDelay("delay", "jitterMs", jitterMs) });
    },
    diskFault: async (node: number, fault: DiskFault | null): Promise<void> => {
      this.#core.checkNode("disk fault", node);
      if (fault !== null && !diskFaults.includes(fault)) {
        throw new LoomTypeError(`disk fault failed: kind must be ${diskFaults.map((kind) => JSON.stringify(kind)).join(", ")} or null, got ${describe(fault)}`);
      }
      if (fault === null) this.#diskFaults.delete(node);
      else this.#diskFaults.set(node, fault);
      await this.#host.setDiskFault(node, fault);
    },
  };

  /**
   * Starts a node again on its directory (emptied first when `wipe`); a running node is stopped
   * first. The thread that ran it has exited, so the store lock it left (as a killed process would)
   * is the cluster's to break. The node's disk fault stays in force (it is the disk's, not the
   * thread's): with one on, the start fails with the store's IoError and the node stays down. One
   * restart at a time per node: a second would break the lock the first one's store had just taken.
   */
  #restart(node: number, wipe: boolean): Promise<void> {
    let restarting = this.#restarts.get(node);
    if (restarting) return wipe ? restarting.then(() => this.faults.wipe(node)) : restarting;
    restarting = (async () => {
      // A running node restarts as an operator would restart it: stopped, then started again.
      if (this.#host.isRunning(node)) await this.#core.stopForRestart(node);
      if (wipe) {
        // A wiped node has a new, empty disk: whatever fault the old one had is gone with it.
        this.#directory.removeNodeDirectory(node);
        this.#diskFaults.delete(node);
        await this.#host.setDiskFault(node, null);
        this.#core.wiped(node);
      } else {
        this.#directory.breakNodeLock(node);
      }
      await this.#core.startNode(node);
    })().finally(() => this.#restarts.delete(node));
    this.#restarts.set(node, restarting);
    return restarting;
  }

  /**
   * Stops taking requests (later calls reject with ClosedError, "not-applied"), lets the requests
   * in flight finish (each answers by its own deadline), waits for a running ring change, then
   * closes every node's store and stops the threads, breaks the store locks crashed nodes left,
   * and releases the data directory: the next cluster (here or in another process) may open it.
   * Idempotent: every call resolves when the cluster is closed.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#core.close();
        await Promise.allSettled(this.#restarts.values()); // a node being restarted is stopped like the others
        await Promise.all(this.#host.running.map((node) => this.#host.stopNode(node)));
        for (const node of this.#core.members) {
          // A crashed node's lock is this process's to free. Best effort: a LockedError means
          // another process opened the node's directory while it was down.
          if (!this.#host.isRunning(node)) {
            try {
              this.#directory.breakNodeLock(node);
            } catch {
              // not ours to free
            }
          }
        }
        this.#transport.close();
        await this.#jobs.close();
      } finally {
        this.#directory.close();
      }
    })();
    return this.#closing;
  }
}

export function createCluster(options: CreateClusterOptions = {}): Promise<Cluster> {
  return Cluster.create(options);
}
