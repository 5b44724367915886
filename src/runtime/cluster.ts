/**
 * The cluster as the caller sees it: `createCluster()` starts one worker thread per node, each
 * owning a Store under `dataDir/node-<id>`, wires a MessageChannel between every pair of workers
 * and one to the main thread, and routes each request to the first node of the key's preference
 * list, which coordinates it (stamps the version, replicates, waits for W or R).
 *
 * Not yet here (issue 3 continues): live reconfiguration and key streaming, membership changes,
 * routing around down nodes, stats per node, the HTTP front.
 *
 * Thread contract: a Cluster is used from the thread that created it.
 */
import { mkdtempSync, existsSync, readFileSync, writeFileSync, renameSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageChannel, Worker } from "node:worker_threads";
import {
  applyConfigChange,
  resolveClusterConfig,
  validateClusterConfig,
  type ClusterConfig,
  type ClusterConfigChange,
} from "../cluster/cluster_config.ts";
import { toQuorumError, type QuorumFailure } from "../coordinator/quorum_error.ts";
import { TooManySiblingsError } from "../coordinator/replica_apply.ts";
import { HashRing, RING_SIZE, rangeSize } from "../ring/hash_ring.ts";
import { decodeContext } from "../version/version_codec.ts";
import { toKeyBytes, toValueBytes, type KeyInput, type ValueInput } from "../storage/store_input.ts";
import type { FsyncPolicy } from "../storage/store_config.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import { PortTransport } from "../transport/port_transport.ts";
import { ClosedError, LoomRangeError, LoomTypeError, describe } from "../util/errors.ts";
import { MAIN_PEER, type NodeStats } from "./node_runtime.ts";
import { workerFileUrl } from "./worker_file.ts";

export interface CreateClusterOptions extends Partial<Omit<ClusterConfig, "gossip" | "antiEntropy">> {
  /** Where the nodes keep their data. @default a new temporary directory */
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
}

interface Pending {
  readonly action: "put" | "delete" | "get";
  readonly replicas: number;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

const CLUSTER_FILE = "cluster.json";

export class Cluster {
  readonly dataDir: string;
  readonly #workers: Worker[];
  /** Nodes crashed by fault injection: requests route around them until they restart. */
  readonly #down = new Set<number>();
  readonly #nodeOptions: { fsync: FsyncPolicy; memtableBytes: number };
  readonly #transport: PortTransport;
  readonly #pending = new Map<number, Pending>();
  #config: ClusterConfig;
  #ring: HashRing;
  #nextRequestId = 1;
  #closed = false;

  private constructor(dataDir: string, config: ClusterConfig, workers: Worker[], transport: PortTransport, nodeOptions: { fsync: FsyncPolicy; memtableBytes: number }) {
    this.dataDir = dataDir;
    this.#nodeOptions = nodeOptions;
    this.#config = config;
    this.#workers = workers;
    this.#transport = transport;
    this.#ring = HashRing.build({ nodes: workers.map((_, id) => id), vnodesPerNode: config.vnodesPerNode });
    transport.onMessage((_from, message) => this.#onResponse(message));
  }

  /** Starts the nodes; with no options, a 5-node cluster on a temporary directory. */
  static async create(options: CreateClusterOptions = {}): Promise<Cluster> {
    if (typeof options !== "object" || options === null) {
      throw new LoomTypeError(`create cluster failed: options must be an object, got ${describe(options)}`);
    }
    const { dataDir: requested, fsync = "batch", memtableBytes = 16 * 1024 * 1024, ...settings } = options;
    if (requested === undefined) resolveClusterConfig(settings); // refuse bad settings before making a directory
    const dataDir = requested ?? mkdtempSync(join(tmpdir(), "loomkv-"));
    const config = loadConfig(dataDir, settings);
    const transport = new PortTransport({ self: MAIN_PEER });
    const workers: Worker[] = [];
    try {
      for (let nodeId = 0; nodeId < config.nodes; nodeId++) {
        workers.push(await startNode({ nodeId, directory: join(dataDir, `node-${nodeId}`), fsync, memtableBytes, transport }));
      }
      wireMesh(workers);
      await Promise.all(workers.map((worker) => controlRoundTrip(worker, "sync", "synced")));
    } catch (error) {
      await Promise.all(workers.map((worker) => worker.terminate()));
      throw error;
    }
    return new Cluster(dataDir, config, workers, transport, { fsync, memtableBytes });
  }

  get config(): ClusterConfig {
    return this.#config;
  }

  /** Writes `value` under `key`; resolves with the new version's context once W replicas have it durably. */
  put(key: KeyInput, value: ValueInput, options: WriteOptions = {}): Promise<{ context: string }> {
    const keyBytes = toKeyBytes("put", key);
    const valueBytes = toValueBytes("put", value);
    return this.#write("put", keyBytes, valueBytes, options);
  }

  /** Deletes `key` (a tombstone, versioned like any write: pass the context you read). */
  delete(key: KeyInput, options: WriteOptions = {}): Promise<{ context: string }> {
    return this.#write("delete", toKeyBytes("delete", key), null, options);
  }

  /** Reads `key` from R replicas: every sibling value, newest first, and the causal context. */
  async get(key: KeyInput, options: RequestOptions = {}): Promise<GetResult> {
    const keyBytes = toKeyBytes("get", key);
    this.#checkOpen("get");
    const r = this.#quorum("get", "r", options.r ?? this.#config.r);
    const timeoutMs = this.#timeout("get", options.timeoutMs);
    const preferenceList = this.#ring.preferenceList(keyBytes, this.#config.n);
    const result = (await this.#request("get", preferenceList, timeoutMs, {
      type: MessageType.requestGet,
      key: keyBytes,
      preferenceList,
      r,
      timeoutMs,
    })) as { values: Uint8Array[]; context: string };
    return { values: [...result.values], context: result.context };
  }

  async #write(action: "put" | "delete", key: Uint8Array, value: Uint8Array | null, options: WriteOptions): Promise<{ context: string }> {
    this.#checkOpen(action);
    const w = this.#quorum(action, "w", options.w ?? this.#config.w);
    const timeoutMs = this.#timeout(action, options.timeoutMs);
    const context = options.context ?? "";
    if (context !== "") decodeContext(context); // a malformed context is refused here, before anything is sent
    const preferenceList = this.#ring.preferenceList(key, this.#config.n);
    const result = (await this.#request(action, preferenceList, timeoutMs, {
      type: MessageType.requestPut,
      key,
      value,
      context,
      preferenceList,
      w,
      timeoutMs,
      pruneThreshold: this.#config.pruneThreshold,
    })) as { context: string };
    return { context: result.context };
  }

  /**
   * Sends a request to the first live node of `preferenceList`, which coordinates it with the
   * list reordered to put itself first. With every replica down it fails at once.
   */
  #request(action: Pending["action"], preferenceList: number[], timeoutMs: number, body: Message): Promise<unknown> {
    const requestId = this.#nextRequestId++;
    const coordinator = preferenceList.find((node) => !this.#down.has(node));
    if (coordinator === undefined) {
      return Promise.reject(toQuorumError(action, { code: "LOOM_QUORUM", acknowledged: 0, required: 1 } as QuorumFailure, preferenceList.length));
    }
    const ordered = [coordinator, ...preferenceList.filter((node) => node !== coordinator)];
    body = { ...body, preferenceList: ordered };
    return new Promise((resolve, reject) => {
      // The coordinator answers by its deadline; this guards against a node that died with the request.
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(toQuorumError(action, { code: "LOOM_QUORUM", acknowledged: 0, required: 1 } as QuorumFailure, preferenceList.length));
      }, timeoutMs * 2 + 1000);
      this.#pending.set(requestId, { action, replicas: preferenceList.length, resolve, reject, timer });
      this.#transport.send(coordinator, { ...body, requestId });
    });
  }

  #onResponse(message: Message): void {
    if (message.type !== MessageType.response) return;
    const pending = this.#pending.get(message.requestId as number);
    if (!pending) return;
    this.#pending.delete(message.requestId as number);
    clearTimeout(pending.timer);
    const result = message.result as { ok: boolean; error?: { code: string; message?: string; siblings?: number; siblingsMax?: number } };
    if (result.ok) return pending.resolve(result);
    const error = result.error!;
    if (error.code === "LOOM_QUORUM") return pending.reject(toQuorumError(pending.action, error as unknown as QuorumFailure, pending.replicas));
    if (error.code === "LOOM_TOO_MANY_SIBLINGS") {
      return pending.reject(new TooManySiblingsError(pending.action, { siblings: error.siblings ?? 0, siblingsMax: error.siblingsMax ?? 0 }));
    }
    const ErrorType = error.code === "LOOM_OUT_OF_RANGE" ? LoomRangeError : LoomTypeError;
    pending.reject(new ErrorType(error.message ?? `${pending.action} failed`));
  }

  #quorum(action: string, name: "w" | "r", value: unknown): number {
    if (typeof value !== "number" || !Number.isInteger(value)) {
      throw new LoomTypeError(`${action} failed: ${name} must be an integer, got ${describe(value)}`);
    }
    if (value < 1 || value > this.#config.n) {
      throw new LoomRangeError(`${action} failed: ${name} is ${value}, must be between 1 and n (${this.#config.n})`);
    }
    return value;
  }

  #timeout(action: string, value: unknown): number {
    if (value === undefined) return this.#config.requestTimeoutMs;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 600_000) {
      throw new LoomRangeError(`${action} failed: timeoutMs must be an integer from 1 to 600000, got ${describe(value)}`);
    }
    return value;
  }

  #checkOpen(action: string): void {
    if (this.#closed) throw new ClosedError(`${action} failed: cluster is closed`);
  }

  /**
   * Fault injection. `crash(node)` kills the node's thread without warning (its store closes
   * nothing: unsynced data is lost as in a process crash, synced data survives); requests route
   * around it, and writes that needed it fail with the count of replicas that answered.
   * `restart(node)` starts it again on its directory (the store replays its log).
   */
  readonly faults = {
    crash: async (node: number): Promise<void> => {
      this.#checkNode("crash", node);
      if (this.#down.has(node)) return;
      this.#down.add(node);
      this.#transport.disconnect(node);
      await this.#workers[node]!.terminate();
    },
    restart: async (node: number): Promise<void> => {
      this.#checkNode("restart", node);
      if (!this.#down.has(node)) return;
      const worker = await startNode({ nodeId: node, directory: join(this.dataDir, `node-${node}`), ...this.#nodeOptions, transport: this.#transport });
      this.#workers[node] = worker;
      const live = this.#workers.map((other, id) => ({ other, id })).filter(({ id }) => id !== node && !this.#down.has(id));
      for (const { other, id } of live) {
        const { port1, port2 } = new MessageChannel();
        worker.postMessage({ kind: "connect", peer: id, port: port1 }, [port1]);
        other.postMessage({ kind: "connect", peer: node, port: port2 }, [port2]);
      }
      await Promise.all([worker, ...live.map(({ other }) => other)].map((w) => controlRoundTrip(w, "sync", "synced")));
      this.#down.delete(node);
    },
  };

  #checkNode(action: string, node: unknown): void {
    this.#checkOpen(action);
    if (typeof node !== "number" || !Number.isInteger(node) || node < 0 || node >= this.#workers.length) {
      throw new LoomRangeError(`${action} failed: no node ${typeof node === "number" ? node : describe(node)}, nodes are 0..${this.#workers.length - 1}`);
    }
  }

  /** The nodes that hold `key`, coordinator first. */
  preferenceList(key: KeyInput): number[] {
    return this.#ring.preferenceList(toKeyBytes("preference list", key), this.#config.n);
  }

  /** The ring: nodes, virtual nodes per node, and the share of the key space each node owns. */
  ring(): { nodes: number[]; vnodesPerNode: number; tokens: number; ownership: Record<number, number> } {
    const ownership: Record<number, number> = {};
    for (const node of this.#ring.nodes) ownership[node] = 0;
    for (const range of this.#ring.replicaRanges(1)) {
      const owner = range.replicas[0]!;
      ownership[owner] = (ownership[owner] ?? 0) + rangeSize(range.range) / RING_SIZE;
    }
    return { nodes: [...this.#ring.nodes], vnodesPerNode: this.#config.vnodesPerNode, tokens: this.#ring.vnodeCount, ownership };
  }

  /** Per node: requests coordinated, latency percentiles, memtable and table sizes, records. */
  async stats(): Promise<{ config: ClusterConfig; down: number[]; nodes: NodeStats[] }> {
    this.#checkOpen("stats");
    const live = this.#workers.filter((_, node) => !this.#down.has(node));
    const replies = await Promise.all(live.map((worker) => controlRoundTrip<{ stats: NodeStats }>(worker, "stats", "stats")));
    return { config: this.#config, down: [...this.#down].sort((a, b) => a - b), nodes: replies.map((reply) => reply.stats) };
  }

  /**
   * Changes settings while traffic runs. W, R, the pruning threshold and the request timeout take
   * effect for the next request (requests carry them). Changing N, the node count or virtual
   * nodes per node moves keys between nodes, which is not built yet: refused, nothing changes.
   */
  configure(change: ClusterConfigChange): ClusterConfig {
    this.#checkOpen("configure");
    const next = applyConfigChange("configure", this.#config, change);
    for (const field of ["n", "nodes", "vnodesPerNode"] as const) {
      if (next[field] !== this.#config[field]) {
        throw new LoomRangeError(`configure failed: changing ${field} live needs key streaming, which is not built yet`);
      }
    }
    saveConfig(this.dataDir, next);
    this.#config = next;
    return next;
  }

  /** Waits for the nodes to close their stores, then stops their threads. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#workers.filter((_, node) => !this.#down.has(node)).map((worker) => stopNode(worker)));
    this.#transport.close();
    for (const [, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(new ClosedError(`${pending.action} failed: cluster closed`));
    }
    this.#pending.clear();
  }
}

export function createCluster(options: CreateClusterOptions = {}): Promise<Cluster> {
  return Cluster.create(options);
}

/** The stored configuration of `dataDir` (if any) overlaid with `settings`; saved back durably. */
function loadConfig(dataDir: string, settings: Partial<ClusterConfig>): ClusterConfig {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, CLUSTER_FILE);
  const stored = existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as { config: ClusterConfig }).config : undefined;
  const config = stored ? validateClusterConfig("create cluster", { ...stored, ...withoutUndefined(settings) }) : resolveClusterConfig(settings);
  if (stored && config.nodes !== stored.nodes) {
    throw new LoomRangeError(`create cluster failed: ${dataDir} holds a ${stored.nodes}-node cluster, asked for ${config.nodes} nodes`);
  }
  saveConfig(dataDir, config);
  return config;
}

function saveConfig(dataDir: string, config: ClusterConfig): void {
  const path = join(dataDir, CLUSTER_FILE);
  writeFileSync(`${path}.tmp`, JSON.stringify({ format: 1, config }, null, 2));
  renameSync(`${path}.tmp`, path);
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}

async function startNode(options: {
  nodeId: number;
  directory: string;
  fsync: FsyncPolicy;
  memtableBytes: number;
  transport: PortTransport;
}): Promise<Worker> {
  const { port1, port2 } = new MessageChannel();
  const workerData = { nodeId: options.nodeId, directory: options.directory, fsync: options.fsync, memtableBytes: options.memtableBytes, mainPort: port2 };
  const worker = new Worker(workerFileUrl("node"), { workerData, transferList: [port2] });
  await new Promise<void>((resolve, reject) => {
    const onMessage = (message: { kind?: string }) => {
      if (message?.kind !== "ready") return;
      worker.off("message", onMessage);
      worker.off("error", reject);
      resolve();
    };
    worker.on("message", onMessage);
    worker.once("error", reject);
  });
  options.transport.connect(options.nodeId, port1);
  return worker;
}

/** A MessageChannel between every pair of nodes, each end handed to its node. */
function wireMesh(workers: readonly Worker[]): void {
  for (let a = 0; a < workers.length; a++) {
    for (let b = a + 1; b < workers.length; b++) {
      const { port1, port2 } = new MessageChannel();
      workers[a]!.postMessage({ kind: "connect", peer: b, port: port1 }, [port1]);
      workers[b]!.postMessage({ kind: "connect", peer: a, port: port2 }, [port2]);
    }
  }
}

/** Sends a control message and waits for its answer (control messages are applied in order). */
function controlRoundTrip<T = unknown>(worker: Worker, kind: string, answer: string): Promise<T> {
  return new Promise<T>((resolve) => {
    const onMessage = (message: { kind?: string }) => {
      if (message?.kind !== answer) return;
      worker.off("message", onMessage);
      resolve(message as T);
    };
    worker.on("message", onMessage);
    worker.postMessage({ kind });
  });
}

async function stopNode(worker: Worker): Promise<void> {
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  worker.postMessage({ kind: "close" });
  await exited;
}
