/**
 * The loomkv cluster behind the YCSB interface: `createCluster` with one worker thread per node,
 * driven from this (the main) thread. A round issues all its requests in one event-loop turn, so
 * the cluster sends one batched message per node; reads and updates resolve on R or W replies.
 *
 * Updates carry a causal context, as a Dynamo client should (write_contexts.ts): each replaces
 * every version the bench has seen acknowledged; only writes still in flight on the same (hot)
 * record stay as siblings, so siblings stay bounded by the depth instead of growing with every
 * blind write (loomkv keeps blind writes as siblings and refuses a key past 64 of them).
 */
import { createCluster, type Cluster, type ClusterConfig } from "../../src/index.ts";
import { WriteContexts } from "../write_contexts.ts";
import { loadValue, recordKey, type OperationStream, type YcsbData } from "../ycsb_workload.ts";
import type { YcsbPeer } from "./ycsb_peer.ts";

export interface LoomClusterPeerOptions {
  readonly nodes: number;
  readonly n: number;
  readonly w: number;
  readonly r: number;
  /** The cluster's data directory: an empty directory owned by this peer for the run. */
  readonly dataDir: string;
  readonly requestTimeoutMs: number;
  /** Requests in flight while loading. */
  readonly loadInFlight: number;
  /** Anti-entropy settings of the cluster (any subset). @default the cluster's defaults */
  readonly antiEntropy?: Partial<ClusterConfig["antiEntropy"]>;
}

export async function openLoomClusterPeer(options: LoomClusterPeerOptions): Promise<LoomClusterPeer> {
  const cluster = await createCluster({
    dataDir: options.dataDir,
    nodes: options.nodes,
    n: options.n,
    w: options.w,
    r: options.r,
    fsync: "batch",
    requestTimeoutMs: options.requestTimeoutMs,
    ...(options.antiEntropy === undefined ? {} : { antiEntropy: options.antiEntropy }),
  });
  return new LoomClusterPeer(cluster, options);
}

export class LoomClusterPeer implements YcsbPeer {
  readonly name: string;
  readonly version = "workspace";
  readonly durability: string;
  readonly requestPath: string;
  readonly #cluster: Cluster;
  readonly #loadInFlight: number;
  /** Per record, the context of its completed writes. */
  #contexts: WriteContexts | undefined;
  #reads = 0;
  #readsWithSiblings = 0;
  #siblingsMax = 0;

  constructor(cluster: Cluster, options: LoomClusterPeerOptions) {
    this.#cluster = cluster;
    this.#loadInFlight = options.loadInFlight;
    this.name = `loomkv ${options.nodes} nodes`;
    this.durability = `N=${options.n} W=${options.w} R=${options.r}, fsync "batch" on every node: an update resolves once W replicas have fdatasync'ed it (group commit, no fixed window); survives power loss of N - W replicas`;
    this.requestPath = `Cluster.put/get from the main thread; requests of one turn go as one message per coordinating node (worker thread), which replicates over MessagePorts; requestTimeoutMs ${options.requestTimeoutMs}`;
  }

  async load(data: YcsbData): Promise<void> {
    const contexts = new WriteContexts(this.#cluster, data.recordCount);
    this.#contexts = contexts;
    for (let start = 0; start < data.recordCount; start += this.#loadInFlight) {
      const end = Math.min(data.recordCount, start + this.#loadInFlight);
      const writes: Promise<void>[] = [];
      for (let record = start; record < end; record++) {
        writes.push(contexts.put(record, recordKey(record), loadValue(data, record)));
      }
      await Promise.all(writes);
    }
  }

  async runRound(stream: OperationStream, start: number, count: number): Promise<void> {
    const mask = stream.records.length - 1;
    const requests: Promise<void>[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const at = (start + i) & mask;
      requests[i] = stream.reads[at] === 1 ? this.#read(stream.keys[at]!) : this.#update(stream.records[at]!, stream.keys[at]!, stream.values[at]!);
    }
    await Promise.all(requests);
  }

  async #read(key: Uint8Array): Promise<void> {
    const { values } = await this.#cluster.get(key);
    if (values.length === 0) throw new Error(`bench failed: ${this.name} found no value for a loaded key`);
    this.#reads++;
    if (values.length > 1) this.#readsWithSiblings++;
    if (values.length > this.#siblingsMax) this.#siblingsMax = values.length;
  }

  #update(record: number, key: Uint8Array, value: Uint8Array): Promise<void> {
    return this.#contexts!.put(record, key, value);
  }

  async readOne(key: Uint8Array): Promise<void> {
    const { values } = await this.#cluster.get(key);
    if (values.length === 0) throw new Error(`bench failed: ${this.name} found no value for a loaded key`);
  }

  async describe(): Promise<Record<string, string | number>> {
    const { nodes } = await this.#cluster.stats();
    const sum = (pick: (node: (typeof nodes)[number]) => number) => nodes.reduce((total, node) => total + pick(node), 0);
    return {
      "reads with siblings %": this.#reads === 0 ? 0 : Number(((100 * this.#readsWithSiblings) / this.#reads).toFixed(2)),
      "most siblings in one read": this.#siblingsMax,
      "requests coordinated (put / get)": `${sum((node) => node.requests.put)} / ${sum((node) => node.requests.get)}`,
      "failed requests": sum((node) => node.requests.failed),
      "tables (all nodes)": sum((node) => node.store.tables),
      "table MiB (all nodes)": Number((sum((node) => node.store.tableBytes) / 2 ** 20).toFixed(1)),
      flushes: sum((node) => node.store.flushes),
      compactions: sum((node) => node.store.compactions),
    };
  }

  /** The cluster's per-node statistics (anti-entropy counters, among others). */
  stats(): ReturnType<Cluster["stats"]> {
    return this.#cluster.stats();
  }

  close(): Promise<void> {
    return this.#cluster.close();
  }
}
