/**
 * The cluster as the caller sees it: `createCluster()` starts one worker thread per node, each
 * owning a Store under `dataDir/node-<id>`, wires a MessageChannel between every pair of workers
 * and one to the main thread, and routes each request to the first node of the key's preference
 * list, which coordinates it (stamps the version, replicates, waits for W or R).
 *
 * Ring changes (virtual nodes per node, N, addNode/removeNode) move keys while traffic runs: see
 * `#changeRing` and docs/ring.md ("Moving keys").
 *
 * Data directory (src/runtime/cluster_directory.ts): the cluster holds `dataDir/LOCK` from create
 * to close, and each node's worker holds its store's `dataDir/node-<id>/LOCK`; a second cluster or
 * store on either, in this process or another, fails with LockedError. `cluster.json` is written
 * durably, once every node has started and after each ring or settings change.
 *
 * Thread contract: a Cluster is used from the thread that created it.
 */
import { MessageChannel, Worker } from "node:worker_threads";
import { applyConfigChange, type ClusterConfig, type ClusterConfigChange } from "../cluster/cluster_config.ts";
import type { StoredCluster } from "../cluster/cluster_file.ts";
import { RealFileSystem } from "../io/real_file_system.ts";
import type { ReadReply } from "../coordinator/get_session.ts";
import { decodeError, type PlainError } from "../util/error_codec.ts";
import { HashRing, RING_SIZE, rangeSize } from "../ring/hash_ring.ts";
import { planTransfer } from "../ring/ring_change.ts";
import { resolveRequestOptions } from "../cluster/request_options.ts";
import { limits } from "../util/limits.ts";
import { decodeContext } from "../version/version_codec.ts";
import { toKeyBytes, toValueBytes, type KeyInput, type ValueInput } from "../storage/store_input.ts";
import { resolveStoreConfig, type FsyncPolicy } from "../storage/store_config.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import { PortTransport } from "../transport/port_transport.ts";
import { BusyError, ClosedError, LoomRangeError, LoomTypeError, QuorumError, RingChangeError, describe } from "../util/errors.ts";
import { MAIN_PEER, type CleanupReport, type NodeStats, type RingSpec, type StreamReport } from "./node_runtime.ts";
import { PiscinaStorageJobs } from "./piscina_storage_jobs.ts";
import { serveStorageJobs } from "./remote_storage_jobs.ts";
import type { StorageJobs } from "../storage/storage_jobs.ts";
import { checkDataDirOption, ClusterDirectory } from "./cluster_directory.ts";
import { workerFileUrl } from "./worker_file.ts";

export interface CreateClusterOptions extends Partial<Omit<ClusterConfig, "gossip" | "antiEntropy">> {
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

export interface RequestOptions {
  /** Overrides the cluster's W (writes) or R (reads) for this request; 1..N. */
  readonly w?: number;
  readonly r?: number;
  /** Overrides the request timeout. */
  readonly timeoutMs?: number;
}

export interface WriteOptions extends RequestOptions {
  /** The context from an earlier get: the write replaces exactly the siblings it saw. */
  readonly context?: string;
}

export interface GetResult {
  /** Sibling values, newest first; [] when absent or deleted. */
  readonly values: Uint8Array[];
  /** Pass it with the next write of this key. */
  readonly context: string;
  /** The node that coordinated the read (the first live replica of the key). */
  readonly coordinator: number;
}

export interface WriteResult {
  /** The context of the version this write created: pass it with the next write of this key. */
  readonly context: string;
  /** The node that coordinated the write (the first live replica of the key). */
  readonly coordinator: number;
}

/** What one ring change did: reported by `configure()`, `addNode()`, `removeNode()` and in stats. */
export interface RingChangeReport {
  readonly action: string;
  readonly before: RingSpec;
  readonly after: RingSpec;
  /** Keys read by the old replicas while scanning their stores. */
  readonly keysScanned: number;
  /** (key, new replica) pairs streamed: every old replica streams each key it held. */
  readonly keysSent: number;
  /** Key copies the move created: (key, new replica) pairs, each counted once. */
  readonly keysMoved: number;
  /** Of the keys streamed, those their target did not hold on arrival (dual writes may come first). */
  readonly keysNewOnArrival: number;
  readonly chunks: number;
  /** Keys removed afterwards from nodes that no longer replicate them (docs/reconfiguration.md). */
  readonly keysDropped: number;
  readonly durationMs: number;
}

/** The ring being moved to, while keys stream: writes go to both rings' replicas. */
interface Transition {
  readonly ring: HashRing;
  /**
   * The configuration the move switches to. Settings changed while it runs are applied to it as
   * well as to the current configuration, so the switch keeps them.
   */
  config: ClusterConfig;
  /** Nodes of the old and the new ring: if one goes down, the move is abandoned. */
  readonly involved: ReadonlySet<number>;
  abort(node: number): void;
}

interface Pending {
  readonly action: "put" | "delete" | "get";
  readonly replicas: number;
  /** W or R: what the fallback guard's error reports. */
  readonly required: number;
  /** The node the request was sent to: if its thread dies, the request fails at once. */
  readonly coordinator: number;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

export class Cluster {
  readonly dataDir: string;
  /** Holds dataDir/LOCK until close; writes cluster.json. */
  readonly #directory: ClusterDirectory;
  /** Node id -> its worker thread (ids are never reused: see #nextNodeId). */
  readonly #workers: Map<number, Worker>;
  /** The ring's nodes, ascending. */
  #members: number[];
  #nextNodeId: number;
  #transition: Transition | null = null;
  /** Ring changes and membership changes run one at a time, in call order. */
  #changes: Promise<unknown> = Promise.resolve();
  #nextStreamId = 1;
  readonly #ringChanges: RingChangeReport[] = [];
  /** Nodes crashed by fault injection: requests route around them until they restart. */
  readonly #down = new Set<number>();
  /** For each crashed node, its thread's termination: its store lock may be broken once it resolves. */
  readonly #terminations = new Map<number, Promise<unknown>>();
  /** Restarts under way, by node. */
  readonly #restarts = new Map<number, Promise<void>>();
  readonly #nodeOptions: NodeOptions;
  readonly #transport: PortTransport;
  readonly #pending = new Map<number, Pending>();
  /** replicaValues() reads waiting for one replica's answer. */
  readonly #inspections = new Map<number, (reply: ReadReply) => void>();
  #config: ClusterConfig;
  #ring: HashRing;
  #nextRequestId = 1;
  /** Drains waiting for requests to finish (ring changes, close). */
  readonly #drainWaiters = new Set<() => void>();
  /** Set by close(): new requests are refused; those in flight finish. */
  #closed = false;
  #closing: Promise<void> | null = null;

  private constructor(
    directory: ClusterDirectory,
    stored: StoredCluster,
    workers: Map<number, Worker>,
    transport: PortTransport,
    nodeOptions: NodeOptions,
  ) {
    this.dataDir = directory.path;
    this.#directory = directory;
    this.#nodeOptions = nodeOptions;
    this.#config = stored.config;
    this.#members = [...stored.members];
    this.#nextNodeId = stored.nextNodeId;
    this.#workers = workers;
    this.#transport = transport;
    this.#ring = HashRing.build({ nodes: this.#members, vnodesPerNode: stored.config.vnodesPerNode });
    transport.onMessage((_from, message) => this.#onResponse(message));
  }

  /**
   * Starts the nodes; with no options, a 5-node cluster on a temporary directory. Everything is
   * validated before anything is written (settings, fsync, memtableBytes, the data directory and
   * its cluster.json); a create that fails removes what it created and releases the lock.
   * Errors: LoomTypeError/LoomRangeError (options), IoError naming the path (the file system
   * refused the data directory), LockedError (another cluster has it open, or a node's store is
   * open elsewhere), CorruptionError (a damaged cluster.json or store).
   */
  static async create(options: CreateClusterOptions = {}): Promise<Cluster> {
    if (typeof options !== "object" || options === null) {
      throw new LoomTypeError(`create cluster failed: options must be an object, got ${describe(options)}`);
    }
    const { dataDir: requested, fsync = "batch", memtableBytes = 16 * 1024 * 1024, ...settings } = options;
    checkDataDirOption(requested);
    resolveStoreConfig({ fsync, memtableBytes }, "create cluster"); // what every node's store would refuse
    const { directory, stored } = ClusterDirectory.open(new RealFileSystem(), requested, settings);
    directory.noteNewNodes(stored.members);
    const transport = new PortTransport({ self: MAIN_PEER });
    // One flush/compaction pool for every node, as many threads as a store runs jobs side by side.
    const nodeOptions: NodeOptions = { fsync, memtableBytes, jobs: new PiscinaStorageJobs({ threads: 2 }) };
    const workers = new Map<number, Worker>();
    try {
      for (const nodeId of stored.members) {
        workers.set(nodeId, await startNode({ nodeId, directory: directory.nodeDirectory(nodeId), ...nodeOptions, transport }));
      }
      wireMesh(workers);
      await Promise.all([...workers.values()].map((worker) => control(worker, { kind: "sync" }, "synced")));
      directory.write(stored);
    } catch (error) {
      await Promise.all([...workers.values()].map((worker) => worker.terminate()));
      for (const nodeId of workers.keys()) directory.breakNodeLock(nodeId); // their threads have exited
      transport.close();
      await nodeOptions.jobs.close();
      directory.abandon();
      throw error;
    }
    return new Cluster(directory, stored, workers, transport, nodeOptions);
  }

  get config(): ClusterConfig {
    return this.#config;
  }

  /**
   * Writes `value` under `key`; resolves with the new version's context (and the node that
   * coordinated the write) once W replicas have it durably. Every failure is a rejection.
   */
  async put(key: KeyInput, value: ValueInput, options?: WriteOptions): Promise<WriteResult> {
    const keyBytes = ownBytes(key, toKeyBytes("put", key));
    const valueBytes = ownBytes(value, toValueBytes("put", value));
    return this.#write("put", keyBytes, valueBytes, options);
  }

  /** Deletes `key` (a tombstone, versioned like any write: pass the context you read). */
  async delete(key: KeyInput, options?: WriteOptions): Promise<WriteResult> {
    return this.#write("delete", ownBytes(key, toKeyBytes("delete", key)), null, options);
  }

  /** Reads `key` from R replicas: every sibling value, newest first, and the causal context. */
  async get(key: KeyInput, options?: RequestOptions): Promise<GetResult> {
    const keyBytes = ownBytes(key, toKeyBytes("get", key));
    this.#checkOpen("get");
    const { quorum: r, timeoutMs } = resolveRequestOptions("get", options, this.#config);
    // While keys move, reads stay on the old replicas: they hold every acknowledged write (writes
    // reach W of them), and the new ones are complete only once streaming has finished.
    const preferenceList = this.#ring.preferenceList(keyBytes, this.#config.n);
    const result = (await this.#request({
      action: "get",
      preferenceList,
      required: r,
      timeoutMs,
      body: { type: MessageType.requestGet, key: keyBytes, r, timeoutMs },
    })) as { values: Uint8Array[]; context: string; coordinator: number };
    return { values: [...result.values], context: result.context, coordinator: result.coordinator };
  }

  async #write(action: "put" | "delete", key: Uint8Array, value: Uint8Array | null, options: WriteOptions | undefined): Promise<WriteResult> {
    this.#checkOpen(action);
    const { quorum: w, timeoutMs, context } = resolveRequestOptions(action, options, this.#config);
    if (context !== "") decodeContext(context); // a malformed context is refused here, before anything is sent
    const preferenceList = this.#ring.preferenceList(key, this.#config.n);
    // While keys move, a write goes to the old and the new replicas and needs W of each, so that
    // whichever ring serves the next read, W of its replicas hold the write.
    const transition = this.#transition;
    const pending = transition?.ring.preferenceList(key, transition.config.n);
    const moving = pending !== undefined && !(pending.length === preferenceList.length && pending.every((node) => preferenceList.includes(node)));
    const result = (await this.#request({
      action,
      preferenceList,
      ...(moving ? { pendingList: pending } : {}),
      required: w,
      timeoutMs,
      body: { type: MessageType.requestPut, key, value, context, w, timeoutMs, pruneThreshold: this.#config.pruneThreshold },
    })) as { context: string; coordinator: number };
    return { context: result.context, coordinator: result.coordinator };
  }

  /**
   * Sends a request to the first live node of `preferenceList`, which coordinates it with the
   * list reordered to put itself first. With every replica down it fails at once ("not-applied":
   * nothing was sent). `pendingList` (writes while keys move) is the key's replica list in the
   * ring being moved to: its nodes are appended to the list, and the write needs W
   * acknowledgements from each list.
   */
  #request(request: {
    readonly action: Pending["action"];
    readonly preferenceList: number[];
    readonly pendingList?: number[];
    readonly required: number;
    readonly timeoutMs: number;
    readonly body: Message;
  }): Promise<unknown> {
    const { action, preferenceList, pendingList, required, timeoutMs } = request;
    if (this.#pending.size >= limits.requestsInFlightMax) {
      return Promise.reject(new BusyError(`${action} failed: ${this.#pending.size} requests in flight, limit is ${limits.requestsInFlightMax}`));
    }
    const requestId = this.#nextRequestId++;
    const coordinator = preferenceList.find((node) => !this.#down.has(node));
    if (coordinator === undefined) {
      const detail = `every replica (node ${preferenceList.join(", ")}) is down; nothing was sent`;
      return Promise.reject(new QuorumError({ action, acknowledged: 0, required, replicas: preferenceList.length, outcome: "not-applied", detail }));
    }
    const ordered = [coordinator, ...preferenceList.filter((node) => node !== coordinator)];
    let body: Message;
    if (pendingList !== undefined) {
      for (const node of pendingList) if (!ordered.includes(node)) ordered.push(node);
      body = { ...request.body, preferenceList: ordered, quorumGroups: [preferenceList, pendingList] };
    } else {
      body = { ...request.body, preferenceList: ordered };
    }
    return new Promise((resolve, reject) => {
      // The coordinator answers by its deadline; this guards against a node that died with the
      // request (the replicas it reached may hold the write: "unknown").
      const guardMs = timeoutMs * 2 + 1000;
      const timer = setTimeout(() => this.#abandon(requestId, `coordinating node ${coordinator} did not answer within ${guardMs} ms`), guardMs);
      this.#pending.set(requestId, { action, replicas: preferenceList.length, required, coordinator, resolve, reject, timer });
      this.#transport.send(coordinator, { ...body, requestId });
    });
  }

  /** Fails a request whose coordinator will not answer: its replicas may hold the write. */
  #abandon(requestId: number, detail: string): void {
    const pending = this.#pending.get(requestId);
    if (!pending) return;
    this.#pending.delete(requestId);
    clearTimeout(pending.timer);
    const { action, required, replicas } = pending;
    pending.reject(new QuorumError({ action, acknowledged: 0, required, replicas, outcome: action === "get" ? "not-applied" : "unknown", detail }));
    this.#settledWaiters();
  }

  #onResponse(message: Message): void {
    if (message.type === MessageType.readReply) {
      const waiting = this.#inspections.get(message.requestId as number);
      this.#inspections.delete(message.requestId as number);
      return waiting?.(message.reply as ReadReply);
    }
    if (message.type !== MessageType.response) return;
    const pending = this.#pending.get(message.requestId as number);
    if (!pending) return;
    this.#pending.delete(message.requestId as number);
    clearTimeout(pending.timer);
    const result = message.result as { ok: true } | { ok: false; error: PlainError };
    if (result.ok) pending.resolve({ ...result, coordinator: message.node as number });
    else pending.reject(decodeError(result.error));
    this.#settledWaiters();
  }

  /** Wakes close() and ring-change drains when requests finish. */
  #settledWaiters(): void {
    for (const waiter of [...this.#drainWaiters]) waiter();
  }

  #checkOpen(action: string): void {
    if (this.#closed) throw new ClosedError(`${action} failed: cluster is closed`);
  }

  /**
   * Fault injection. `crash(node)` kills the node's thread without warning (its store closes
   * nothing: unsynced data is lost as in a process crash, synced data survives, and its
   * directory's LOCK stays, naming this live process); requests route around it, and writes that
   * needed it fail with the count of replicas that answered. `restart(node)` waits for the thread
   * to have exited, breaks the lock it left (the cluster holds the data directory and knows that
   * thread is gone), and starts the node again on its directory: its store takes the lock anew and
   * replays its log.
   */
  readonly faults = {
    crash: async (node: number): Promise<void> => {
      this.#checkNode("crash", node);
      if (this.#down.has(node)) return;
      this.#down.add(node);
      if (this.#transition?.involved.has(node)) this.#transition.abort(node);
      this.#transport.disconnect(node);
      const terminated = this.#workers.get(node)!.terminate();
      this.#terminations.set(node, terminated);
      await terminated;
      // Its requests will never be answered; the replicas it reached may hold their writes.
      for (const [requestId, pending] of this.#pending) {
        if (pending.coordinator === node) this.#abandon(requestId, `coordinating node ${node} crashed`);
      }
    },
    restart: (node: number): Promise<void> => {
      try {
        this.#checkNode("restart", node);
      } catch (error) {
        return Promise.reject(error);
      }
      if (!this.#down.has(node)) return Promise.resolve();
      // One restart at a time per node: a second would break the lock the first one's store took.
      let restarting = this.#restarts.get(node);
      if (!restarting) {
        restarting = this.#restart(node).finally(() => this.#restarts.delete(node));
        this.#restarts.set(node, restarting);
      }
      return restarting;
    },
  };

  async #restart(node: number): Promise<void> {
    await this.#releaseCrashed(node);
    const worker = await startNode({ nodeId: node, directory: this.#directory.nodeDirectory(node), ...this.#nodeOptions, transport: this.#transport });
    this.#workers.set(node, worker);
    await this.#connectToLive(node, worker);
    this.#down.delete(node);
  }

  /** Once crashed node `node`'s thread has exited, breaks the store lock it left behind. */
  async #releaseCrashed(node: number): Promise<void> {
    await this.#terminations.get(node);
    this.#terminations.delete(node);
    this.#directory.breakNodeLock(node);
  }

  /** Gives `worker` (node `node`) a port to every other live node and waits until all have it. */
  async #connectToLive(node: number, worker: Worker): Promise<void> {
    const live = [...this.#workers].filter(([id]) => id !== node && !this.#down.has(id));
    for (const [id, other] of live) {
      const { port1, port2 } = new MessageChannel();
      worker.postMessage({ kind: "connect", peer: id, port: port1 }, [port1]);
      other.postMessage({ kind: "connect", peer: node, port: port2 }, [port2]);
    }
    await Promise.all([worker, ...live.map(([, other]) => other)].map((w) => control(w, { kind: "sync" }, "synced")));
  }

  #checkNode(action: string, node: unknown): void {
    this.#checkOpen(action);
    if (typeof node !== "number" || !Number.isInteger(node)) {
      throw new LoomTypeError(`${action} failed: node must be an integer id, got ${describe(node)}`);
    }
    if (!this.#workers.has(node)) throw new LoomRangeError(`${action} failed: no node ${node}, nodes are ${this.#members.join(", ")}`);
  }

  /**
   * What each replica of `key` holds itself: no quorum, no merge, no read repair. For inspection
   * (is every replica up to date?) and tests; values are newest first, [] when absent or deleted,
   * null when the replica did not answer within the request timeout.
   */
  async replicaValues(key: KeyInput): Promise<{ node: number; values: Uint8Array[] | null }[]> {
    const keyBytes = toKeyBytes("replica values", key);
    this.#checkOpen("replica values");
    const replicas = this.#ring.preferenceList(keyBytes, this.#config.n);
    return Promise.all(
      replicas.map(async (node) => {
        if (this.#down.has(node)) return { node, values: null };
        const requestId = this.#nextRequestId++;
        const reply = await new Promise<ReadReply | null>((resolve) => {
          const timer = setTimeout(() => {
            this.#inspections.delete(requestId);
            resolve(null);
          }, this.#config.requestTimeoutMs);
          this.#inspections.set(requestId, (answer) => {
            clearTimeout(timer);
            resolve(answer);
          });
          this.#transport.send(node, { type: MessageType.read, requestId, key: keyBytes });
        });
        if (!reply?.ok) return { node, values: null };
        return { node, values: reply.versions.flatMap((version) => (version.value === null ? [] : [version.value])) };
      }),
    );
  }

  /** The nodes that hold `key`, coordinator first. */
  preferenceList(key: KeyInput): number[] {
    return this.#ring.preferenceList(toKeyBytes("preference list", key), this.#config.n);
  }

  /** The ring: nodes, virtual nodes per node, and the share of the key space each node owns. */
  ring(): { nodes: number[]; vnodesPerNode: number; tokens: number; ownership: Record<number, number>; moving: boolean } {
    const ownership: Record<number, number> = {};
    for (const node of this.#ring.nodes) ownership[node] = 0;
    for (const range of this.#ring.replicaRanges(1)) {
      const owner = range.replicas[0]!;
      ownership[owner] = (ownership[owner] ?? 0) + rangeSize(range.range) / RING_SIZE;
    }
    return {
      nodes: [...this.#ring.nodes],
      vnodesPerNode: this.#config.vnodesPerNode,
      tokens: this.#ring.vnodeCount,
      ownership,
      moving: this.#transition !== null,
    };
  }

  /**
   * Per node: requests coordinated, latency percentiles, memtable and table sizes, records, keys
   * streamed; and the cluster's last ring changes with the keys each moved. With `{ keys: true }`
   * every node also scans its store to count live and deleted keys and keys with siblings (a full
   * read of every node: for inspection, not for a dashboard that polls).
   */
  async stats(options: { keys?: boolean } = {}): Promise<{ config: ClusterConfig; down: number[]; nodes: NodeStats[]; ringChanges: RingChangeReport[] }> {
    this.#checkOpen("stats");
    if (typeof options !== "object" || options === null) throw new LoomTypeError(`stats failed: options must be an object, got ${describe(options)}`);
    const live = [...this.#workers].filter(([node]) => !this.#down.has(node)).map(([, worker]) => worker);
    const scan = options.keys === true;
    const replies = await Promise.all(live.map((worker) => control<{ stats: NodeStats }>(worker, { kind: "stats", scan }, "stats")));
    return {
      config: this.#config,
      down: [...this.#down].sort((a, b) => a - b),
      nodes: replies.map((reply) => reply.stats),
      ringChanges: [...this.#ringChanges],
    };
  }

  /**
   * Changes settings while traffic runs; resolves with the new configuration. W, R, the pruning
   * threshold and the request timeout take effect for the next request (requests carry them),
   * at once even while keys move (then checked against both rings).
   * Changing N or virtual nodes per node moves the keys whose replicas change to their new
   * replicas first (streamed between the nodes), then switches the ring; reads and writes go on
   * meanwhile. Invalid settings are refused (LoomTypeError, LoomRangeError) and change nothing;
   * a move that cannot finish (a node stops answering) rejects with RingChangeError and leaves the
   * old ring in force. Membership changes with `addNode()` and `removeNode()`.
   */
  configure(change: ClusterConfigChange): Promise<ClusterConfig> {
    try {
      this.#checkOpen("configure");
      if (typeof change === "object" && change !== null && "nodes" in change && change.nodes !== undefined && change.nodes !== this.#config.nodes) {
        throw new LoomRangeError("configure failed: nodes changes with addNode() and removeNode(), not configure()");
      }
      const next = applyConfigChange("configure", this.#config, change); // refuse at once, whatever is queued
      if (next.n === this.#config.n && next.vnodesPerNode === this.#config.vnodesPerNode) {
        // Settings that move no keys apply at once, even while a move runs; they must then also
        // hold on the configuration being moved to (W <= its N), which takes them too.
        const transition = this.#transition;
        if (transition) transition.config = applyConfigChange("configure", transition.config, change);
        this.#save(next, this.#members);
        return Promise.resolve(this.#config);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#serialize(async () => {
      this.#checkOpen("configure");
      const next = applyConfigChange("configure", this.#config, change);
      if (next.n !== this.#config.n || next.vnodesPerNode !== this.#config.vnodesPerNode) {
        await this.#changeRing("configure", next, this.#members);
      } else {
        this.#save(next, this.#members);
      }
      return this.#config;
    });
  }

  /**
   * Starts a new node (the next unused id), streams to it the keys it now replicates, then adds it
   * to the ring. Resolves with its id. Traffic goes on meanwhile.
   */
  addNode(): Promise<number> {
    return this.#serialize(async () => {
      this.#checkOpen("add node");
      if (this.#members.length >= limits.nodesMax) {
        throw new LoomRangeError(`add node failed: the cluster has ${this.#members.length} nodes, limit is ${limits.nodesMax}`);
      }
      const next = applyConfigChange("add node", this.#config, { nodes: this.#members.length + 1 });
      const node = this.#nextNodeId;
      const worker = await startNode({ nodeId: node, directory: this.#directory.nodeDirectory(node), ...this.#nodeOptions, transport: this.#transport });
      this.#workers.set(node, worker);
      try {
        await this.#connectToLive(node, worker);
        this.#nextNodeId = node + 1;
        await this.#changeRing("add node", next, [...this.#members, node].sort((a, b) => a - b));
      } catch (error) {
        await this.#stopMember(node);
        throw error;
      }
      return node;
    });
  }

  /**
   * Streams the keys `node` holds to the nodes that replicate them once it is gone, takes it off the
   * ring, then stops its thread. Its directory is left on disk (docs/ring.md). Refused when the
   * remaining nodes could not hold N replicas.
   */
  removeNode(node: number): Promise<void> {
    try {
      this.#checkNode("remove node", node);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#serialize(async () => {
      this.#checkNode("remove node", node);
      if (this.#members.length - 1 < this.#config.n) {
        throw new LoomRangeError(
          `remove node failed: ${this.#members.length - 1} nodes cannot hold n = ${this.#config.n} replicas; lower n first`,
        );
      }
      const next = applyConfigChange("remove node", this.#config, { nodes: this.#members.length - 1 });
      await this.#changeRing("remove node", next, this.#members.filter((id) => id !== node));
      // Requests routed before the switch may still wait for the node's answer.
      await this.#drain(this.#nextRequestId);
      await this.#stopMember(node);
    });
  }

  #serialize<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#changes.then(work);
    this.#changes = result.catch(() => {});
    return result;
  }

  /**
   * Moves the cluster to `next` on `members`: (1) from now on writes go to the old and new replicas
   * of their key (W of each); (2) once every request routed before that has finished, every old
   * replica streams the keys whose replica set changes to their new replicas, which merge them
   * durably; (3) the ring switches and the configuration is saved. Every write acknowledged before
   * (1) is on W old replicas, all of which stream, and every write after (1) reaches W new
   * replicas: no acknowledged write is missing from the new ring. A node that is down or stops
   * answering abandons the change (RingChangeError), leaving the old ring in force.
   */
  async #changeRing(action: string, next: ClusterConfig, members: number[]): Promise<RingChangeReport> {
    const startedMs = performance.now();
    const before: RingSpec = { nodes: [...this.#members], vnodesPerNode: this.#config.vnodesPerNode, n: this.#config.n };
    const after: RingSpec = { nodes: members, vnodesPerNode: next.vnodesPerNode, n: next.n };
    const down = [...new Set([...before.nodes, ...after.nodes])].filter((node) => this.#down.has(node));
    if (down.length > 0) throw new RingChangeError(`${action} failed: node ${down.join(", ")} is down; restart it first`);
    const ring = HashRing.build({ nodes: members, vnodesPerNode: next.vnodesPerNode });
    // A node of either ring going down (faults.crash) abandons the move at once, rather than when
    // the chunks streamed to it time out.
    let abort!: (node: number) => void;
    const aborted = new Promise<never>((_, reject) => {
      abort = (node) => reject(new RingChangeError(`${action} failed: node ${node} went down while keys moved; the old ring stays in force`));
    });
    aborted.catch(() => {});
    const transition: Transition = {
      ring,
      config: { ...next, nodes: members.length },
      involved: new Set([...before.nodes, ...after.nodes]),
      abort,
    };
    this.#transition = transition;
    let reports: StreamReport[];
    const plan = { streamId: this.#nextStreamId++, before, after, keysPerSecond: next.streamKeysPerSecond };
    let streaming = false;
    try {
      await Promise.race([this.#drain(this.#nextRequestId), aborted]);
      // Lowering N (or a change that only drops replicas) gives no key a new replica: no scan.
      const gains = planTransfer(this.#ring, ring, before.n, after.n).some((transfer) => transfer.targets.length > 0);
      const stream = (node: number) => control<{ report?: StreamReport; error?: string }>(this.#workers.get(node)!, { kind: "stream", plan }, "streamed");
      streaming = gains;
      const replies = gains ? await Promise.race([Promise.all(before.nodes.map(stream)), aborted]) : [];
      const failed = replies.find((reply) => reply.error !== undefined);
      if (failed) throw new RingChangeError(`${action} failed: ${failed.error}`);
      reports = replies.map((reply) => reply.report!);
    } catch (error) {
      // Sources still scanning stop at their next chunk instead of streaming for nothing.
      if (streaming) {
        for (const node of before.nodes) if (!this.#down.has(node)) this.#workers.get(node)?.postMessage({ kind: "abortStream", streamId: plan.streamId });
      }
      if (error instanceof RingChangeError) throw error;
      throw new RingChangeError(`${action} failed: ${error instanceof Error ? error.message : String(error)}; the old ring stays in force`);
    } finally {
      this.#transition = null;
    }
    this.#ring = ring;
    // The move's configuration, with the settings changed while keys moved (W, R, timeouts, ...).
    this.#save(transition.config, members);
    const dropped = await this.#cleanup(after, next.streamKeysPerSecond);
    const report: RingChangeReport = {
      action,
      before,
      after,
      keysScanned: reports.reduce((sum, r) => sum + r.keysScanned, 0),
      keysSent: reports.reduce((sum, r) => sum + r.keysSent, 0),
      keysMoved: reports.reduce((sum, r) => sum + r.keysMoved, 0),
      keysNewOnArrival: reports.reduce((sum, r) => sum + r.keysNew, 0),
      chunks: reports.reduce((sum, r) => sum + r.chunks, 0),
      keysDropped: dropped,
      durationMs: Math.round(performance.now() - startedMs),
    };
    this.#ringChanges.push(report);
    if (this.#ringChanges.length > RING_CHANGES_KEPT) this.#ringChanges.shift();
    return report;
  }

  /**
   * After a switch: every live node of the new ring drops the keys it no longer replicates (lost
   * ranges, lower N). Runs once the requests routed under the old ring have answered, still inside
   * the serialized change, so no move is in flight. Best effort: a node that fails keeps its extra
   * copies (harmless: reads never ask it for them). Returns the keys dropped.
   */
  async #cleanup(ring: RingSpec, keysPerSecond: number): Promise<number> {
    await this.#drain(this.#nextRequestId);
    const live = ring.nodes.filter((node) => !this.#down.has(node));
    const replies = await Promise.all(
      live.map((node) =>
        control<{ report?: CleanupReport; error?: string }>(this.#workers.get(node)!, { kind: "cleanup", ring, keysPerSecond }, "cleaned").catch(
          (error: unknown): { report?: CleanupReport; error?: string } => ({ error: String(error) }),
        ),
      ),
    );
    return replies.reduce((sum, reply) => sum + (reply.report?.keysDropped ?? 0), 0);
  }

  /** Waits until every request numbered below `mark` has answered (each does by its deadline). */
  async #drain(mark: number): Promise<void> {
    const waiting = () => {
      for (const requestId of this.#pending.keys()) if (requestId < mark) return true;
      return false;
    };
    while (waiting()) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#drainWaiters.delete(wake);
          resolve();
        };
        this.#drainWaiters.add(wake);
      });
    }
  }

  /** Stops a member's thread cleanly and forgets it. */
  async #stopMember(node: number): Promise<void> {
    const worker = this.#workers.get(node);
    if (!worker) return;
    this.#workers.delete(node);
    this.#transport.disconnect(node);
    for (const [id, other] of this.#workers) if (!this.#down.has(id)) other.postMessage({ kind: "disconnect", peer: node });
    if (this.#down.has(node)) {
      this.#down.delete(node);
      await this.#releaseCrashed(node);
    } else {
      await stopNode(worker);
    }
  }

  #save(config: ClusterConfig, members: number[]): void {
    this.#config = { ...config, nodes: members.length };
    this.#members = [...members];
    this.#directory.write({ config: this.#config, members: this.#members, nextNodeId: this.#nextNodeId });
  }

  /**
   * Stops taking requests (later calls reject with ClosedError, "not-applied"), lets the requests
   * in flight finish (each answers by its own deadline), waits for a running ring change, then
   * closes every node's store and stops the threads, breaks the store locks crashed nodes left,
   * and releases the data directory: the next cluster (here or in another process) may open it.
   * Idempotent: every call resolves when the cluster is closed.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      try {
        await this.#changes;
        await Promise.allSettled(this.#restarts.values()); // a node being restarted is stopped like the others
        await this.#drain(this.#nextRequestId);
        await Promise.all([...this.#workers].filter(([node]) => !this.#down.has(node)).map(([, worker]) => stopNode(worker)));
        for (const node of this.#down) {
          // Best effort: a LockedError here means another process opened the node's directory
          // while it was down; that lock is not the crashed thread's to free.
          await this.#releaseCrashed(node).catch(() => {});
        }
        this.#transport.close();
        await this.#nodeOptions.jobs.close();
        for (const waiting of this.#inspections.values()) waiting({ ok: false });
        this.#inspections.clear();
      } finally {
        this.#directory.close();
      }
    })();
    return this.#closing;
  }
}

/** `bytes` as the request's own: a caller's buffer is copied, so changing it later changes nothing. */
function ownBytes(input: unknown, bytes: Uint8Array): Uint8Array {
  return input === bytes ? bytes.slice() : bytes;
}

export function createCluster(options: CreateClusterOptions = {}): Promise<Cluster> {
  return Cluster.create(options);
}

/** Ring change reports kept for stats(). */
const RING_CHANGES_KEPT = 16;

/** What every node worker is started with. */
interface NodeOptions {
  readonly fsync: FsyncPolicy;
  readonly memtableBytes: number;
  /** The cluster's shared flush/compaction pool, served to each node over its own port. */
  readonly jobs: StorageJobs;
}

async function startNode(options: NodeOptions & { nodeId: number; directory: string; transport: PortTransport }): Promise<Worker> {
  const { port1, port2 } = new MessageChannel();
  const jobsChannel = new MessageChannel();
  serveStorageJobs(options.jobs, jobsChannel.port1);
  const workerData = {
    nodeId: options.nodeId,
    directory: options.directory,
    fsync: options.fsync,
    memtableBytes: options.memtableBytes,
    mainPort: port2,
    jobsPort: jobsChannel.port2,
  };
  const worker = new Worker(workerFileUrl("node"), { workerData, transferList: [port2, jobsChannel.port2] });
  // However the thread ends (close, crash, failed start), stop serving it jobs.
  worker.once("exit", () => jobsChannel.port1.close());
  await new Promise<void>((resolve, reject) => {
    // A worker's messages arrive before its exit (both runtimes): "failed" wins over the exit.
    const onExit = (code: number) => reject(new ClosedError(`start node ${options.nodeId} failed: its thread exited with code ${code}`));
    const onMessage = (message: { kind?: string; error?: PlainError }) => {
      if (message?.kind !== "ready" && message?.kind !== "failed") return;
      worker.off("message", onMessage);
      worker.off("error", reject);
      worker.off("exit", onExit);
      if (message.kind === "ready") resolve();
      else reject(decodeError(message.error!));
    };
    worker.on("message", onMessage);
    worker.once("error", reject);
    worker.once("exit", onExit);
  });
  options.transport.connect(options.nodeId, port1);
  return worker;
}

/** A MessageChannel between every pair of nodes, each end handed to its node. */
function wireMesh(workers: ReadonlyMap<number, Worker>): void {
  const entries = [...workers];
  for (let a = 0; a < entries.length; a++) {
    for (let b = a + 1; b < entries.length; b++) {
      const [idA, workerA] = entries[a]!;
      const [idB, workerB] = entries[b]!;
      const { port1, port2 } = new MessageChannel();
      workerA.postMessage({ kind: "connect", peer: idB, port: port1 }, [port1]);
      workerB.postMessage({ kind: "connect", peer: idA, port: port2 }, [port2]);
    }
  }
}

let nextControlId = 1;

/**
 * Sends a control message and waits for the answer of kind `answer` carrying the same id (the
 * worker echoes `id`; control messages are applied in order).
 */
function control<T = unknown>(worker: Worker, message: { kind: string; [field: string]: unknown }, answer: string): Promise<T> {
  const id = nextControlId++;
  return new Promise<T>((resolve, reject) => {
    const onMessage = (reply: { kind?: string; id?: number }) => {
      if (reply?.kind !== answer || reply.id !== id) return;
      worker.off("message", onMessage);
      worker.off("exit", onExit);
      resolve(reply as T);
    };
    const onExit = () => {
      worker.off("message", onMessage);
      reject(new ClosedError(`${message.kind} failed: node thread exited`));
    };
    worker.on("message", onMessage);
    worker.once("exit", onExit);
    worker.postMessage({ ...message, id });
  });
}

async function stopNode(worker: Worker): Promise<void> {
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  worker.postMessage({ kind: "close" });
  await exited;
}
