/**
 * The cluster's main-thread logic, independent of how nodes run, wired from its parts: client
 * requests (cluster_requests.ts: validation, routing, requests in flight), membership and liveness
 * (cluster_membership.ts), and, here, configuration changes, node starts and removals, stats and
 * the ring-change protocol (src/ringchange/). The public `Cluster` (src/runtime/cluster.ts) drives
 * it with worker threads; the simulator drives the same code with every node in one thread. IO
 * reaches it only through its injected NodeHost, Transport, Clock and `save` (the cluster file).
 *
 * Thread contract: one thread (the main thread, or the simulator's).
 */
import type { Clock } from "../io/clock.ts";
import type { MemberView } from "../membership/gossip.ts";
import { MAIN_PEER, type NodeSettings, type RingSpec } from "../node/node_messages.ts";
import type { NodeStats } from "../node/node_stats.ts";
import { HashRing, RING_SIZE, rangeSize } from "../ring/hash_ring.ts";
import { RingMover, type RingChangeReport } from "../ringchange/ring_mover.ts";
import { toKeyBytes, type KeyInput, type ValueInput } from "../storage/store_input.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import type { Transport } from "../transport/transport.ts";
import { ClosedError, describe, LoomRangeError, LoomTypeError, RingChangeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import type { ContextSigner } from "../version/context_signer.ts";
import { applyConfigChange, type ClusterConfig, type ClusterConfigChange } from "./cluster_config.ts";
import type { StoredCluster } from "./cluster_file.ts";
import { ClusterMembership, type MembershipChange } from "./cluster_membership.ts";
import { ClusterRequests, type GetResult, type RequestOptions, type WriteOptions, type WriteResult } from "./cluster_requests.ts";
import type { NodeHost, NodeStart } from "./node_host.ts";
import { RequestTable } from "./request_table.ts";

export type { RingChangeReport } from "../ringchange/ring_mover.ts";
export type { MembershipChange } from "./cluster_membership.ts";
export type { GetResult, RequestOptions, WriteOptions, WriteResult } from "./cluster_requests.ts";

/** What the cluster file holds: configuration, membership, the next node id and fresh actor. */
export type ClusterState = StoredCluster;

export interface ClusterCoreOptions {
  readonly state: ClusterState;
  readonly host: NodeHost;
  /** The main thread's endpoint (peer MAIN_PEER) on the nodes' data plane. */
  readonly transport: Transport;
  readonly clock: Clock;
  /** Verifies contexts before anything is sent; signs joined ones. */
  readonly signer: ContextSigner;
  /** Writes the cluster file durably; the state it is given is in force once it returns. */
  readonly save: (state: ClusterState) => void;
  /**
   * The negative control of the simulator only: forget which nodes owe a ring change's cleanup,
   * so that a node that missed one serves (and a purge goes ahead) with the stale copies it kept.
   * @default false
   */
  readonly unsafeForgetCleanups?: boolean;
}

export interface ClusterStats {
  readonly config: ClusterConfig;
  /** Members the router sends nothing to (crashed, found dead, or their store failed). */
  readonly down: number[];
  /**
   * Client requests in flight now, and attempts sent on to another coordinator since the start (a
   * read whose coordinator died or stalled; a request a coordinator refused for a reason of its own).
   */
  readonly requests: { readonly inFlight: number; readonly retried: number };
  /** Members that still owe the last ring change's cleanup (docs/reconfiguration.md); purges wait meanwhile. */
  readonly cleanupsPending: number[];
  readonly nodes: NodeStats[];
  readonly ringChanges: RingChangeReport[];
  /** Each member's status and generation in the main thread's gossip view. */
  readonly membership: MemberView[];
}

export class ClusterCore {
  readonly #host: NodeHost;
  readonly #clock: Clock;
  readonly #save: (state: ClusterState) => void;
  readonly #requests: RequestTable;
  readonly #client: ClusterRequests;
  readonly #membership: ClusterMembership;
  readonly #mover: RingMover<ClusterConfig>;
  #config: ClusterConfig;
  /** The ring's nodes, ascending. */
  #members: number[];
  #nextNodeId: number;
  #nextActor: number;
  /** Members that owe the last ring change's cleanup (saved in the cluster file). */
  readonly #pendingCleanups: Set<number>;
  readonly #rememberCleanups: boolean;
  #ring: HashRing;
  #closed = false;

  constructor(options: ClusterCoreOptions) {
    this.#host = options.host;
    this.#clock = options.clock;
    this.#save = options.save;
    this.#config = options.state.config;
    this.#members = [...options.state.members];
    this.#nextNodeId = options.state.nextNodeId;
    this.#nextActor = options.state.nextActor;
    this.#rememberCleanups = options.unsafeForgetCleanups !== true;
    this.#pendingCleanups = new Set(this.#rememberCleanups ? options.state.pendingCleanups : []);
    this.#ring = HashRing.build({ nodes: this.#members, vnodesPerNode: this.#config.vnodesPerNode });
    this.#requests = new RequestTable(options.clock);
    this.#membership = new ClusterMembership({ clock: options.clock, members: this.#members, gossip: this.#config.gossip });
    this.#mover = new RingMover({
      host: options.host,
      freshActor: () => this.allocateActor(),
      clock: options.clock,
      requests: this.#requests,
      isDown: (node) => this.#membership.unavailable.has(node),
      switchTo: (config, members, ring) => {
        this.#ring = ring;
        // Every node of the new ring owes its cleanup, saved in the same write as the switch.
        this.#commit(config, members, () => {
          this.#pendingCleanups.clear();
          if (this.#rememberCleanups) for (const node of members) this.#pendingCleanups.add(node);
        });
      },
      current: () => ({ config: this.#config, members: this.#members, ring: this.#ring }),
      applyChange: (config, change) => applyConfigChange("configure", config, change),
      pendingCleanups: () => [...this.#pendingCleanups],
      cleaned: (node) => this.#cleaned(node),
    });
    this.#client = new ClusterRequests({
      transport: options.transport,
      clock: options.clock,
      signer: options.signer,
      requests: this.#requests,
      config: () => this.#config,
      ring: () => this.#ring,
      moving: () => {
        const transition = this.#mover.transition;
        return transition ? { ring: transition.ring, n: transition.config.n } : null;
      },
      unavailable: this.#membership.unavailable,
      isDown: (node) => this.#membership.isDown(node),
      checkOpen: (action) => this.#checkOpen(action),
    });
    options.transport.onMessage((_from, message) => this.#onMessage(message));
  }

  get config(): ClusterConfig {
    return this.#config;
  }

  get members(): readonly number[] {
    return this.#members;
  }

  get nextNodeId(): number {
    return this.#nextNodeId;
  }

  get closed(): boolean {
    return this.#closed;
  }

  isDown(node: number): boolean {
    return this.#membership.isDown(node);
  }

  // ---- requests ----------------------------------------------------------------------------

  /** See Cluster.put. Every failure is a rejection; refusals come before anything is sent. */
  put(key: KeyInput, value: ValueInput, options?: WriteOptions): Promise<WriteResult> {
    return this.#client.put(key, value, options);
  }

  delete(key: KeyInput, options?: WriteOptions): Promise<WriteResult> {
    return this.#client.delete(key, options);
  }

  get(key: KeyInput, options?: RequestOptions): Promise<GetResult> {
    return this.#client.get(key, options);
  }

  /** See Cluster.joinContexts. */
  joinContexts(key: KeyInput, contexts: readonly string[]): string {
    return this.#client.joinContexts(key, contexts);
  }

  /** See Cluster.replicaValues. */
  replicaValues(key: KeyInput): Promise<{ node: number; values: Uint8Array[] | null }[]> {
    return this.#client.replicaValues(key);
  }

  preferenceList(key: KeyInput): number[] {
    return this.#client.preferenceList(key);
  }

  #onMessage(message: Message): void {
    if (message.type === MessageType.gossip) return this.#membership.receiveGossip(message.table as number[]);
    this.#client.onMessage(message);
  }

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
      moving: this.#mover.transition !== null,
    };
  }

  async stats(options: { keys?: boolean } = {}): Promise<ClusterStats> {
    this.#checkOpen("stats");
    if (typeof options !== "object" || options === null) throw new LoomTypeError(`stats failed: options must be an object, got ${describe(options)}`);
    const scan = options.keys === true;
    // Members, and a node being added while its keys stream to it.
    const nodes = [...new Set([...this.#members, ...(this.#mover.transition?.involved ?? [])])].sort((a, b) => a - b);
    // A node whose store failed still answers: its stats say why it serves nothing.
    const asked = nodes.filter((node) => this.#membership.answers(node));
    const answers = await Promise.all(asked.map((node) => this.#host.control(node).stats(scan)));
    const down = this.#membership.downList();
    const requests = { inFlight: this.#requests.size, retried: this.#requests.retries };
    const cleanupsPending = [...this.#pendingCleanups].sort((a, b) => a - b);
    return { config: this.#config, down, requests, cleanupsPending, nodes: answers, ringChanges: this.#mover.reports(), membership: this.membership() };
  }

  /**
   * A major compaction on every node that is up (Cassandra's `nodetool compact`): each merges its
   * tables into one, so deleted keys purged by anti-entropy leave the files. Resolves with the
   * nodes compacted; a node that fails or stops meanwhile is left out.
   */
  async compact(): Promise<number[]> {
    this.#checkOpen("compact");
    const nodes = this.#members.filter((node) => !this.#membership.unavailable.has(node) && !this.#membership.isSilent(node));
    const done = await Promise.all(nodes.map((node) => this.#host.control(node).compact().then(() => true, () => false)));
    return nodes.filter((_node, index) => done[index]);
  }

  // ---- membership and liveness ---------------------------------------------------------------

  /** Calls `listener` on every status change; returns the function that stops it. */
  onMembership(listener: (change: MembershipChange) => void): () => void {
    return this.#membership.onMembership(listener);
  }

  /** Each member's status and generation as the main thread sees them. */
  membership(): MemberView[] {
    return this.#membership.view();
  }

  /**
   * `node` is down (its thread crashed or exited): requests route around it, the requests it
   * coordinates fail at once ("unknown": the replicas it reached may hold their writes), and a
   * ring change that involves it is abandoned.
   */
  nodeDown(node: number, reason: string): Promise<void> {
    if (!this.#members.includes(node) && !this.#mover.involves(node)) return Promise.resolve();
    const generation = this.#membership.markExited(node);
    // Its peers stop sending it work at once, as they would on a connection that reset.
    const told = this.#members
      .filter((member) => member !== node && !this.#membership.isDown(member))
      .map((member) => this.#host.control(member).peerExited(node, generation).catch(() => {}));
    this.#mover.nodeDown(node);
    this.#requests.abandonCoordinatedBy(node, `coordinating node ${node} ${reason}`);
    return Promise.all(told).then(() => {});
  }

  /**
   * Stops running node `node` on purpose, before it starts again (a restart): it is down first
   * (its reads go on to other coordinators, its writes in flight fail "unknown", its peers stop
   * sending it work), then its stores close. The clean-end rule decides its next actor.
   */
  async stopForRestart(node: number): Promise<void> {
    await this.nodeDown(node, "was restarted");
    await this.#host.stopNode(node);
  }

  /**
   * Starts node `node` (a new one, or one whose thread is not running) through the host, with a
   * gossip generation above its earlier ones and the ring's members, and routes to it again.
   */
  async startNode(node: number): Promise<void> {
    const generation = this.#membership.nextGeneration(node);
    const settings = this.#nodeSettings(node);
    // A node that owes the last ring change's cleanup finishes it before it serves.
    const cleanup = this.#pendingCleanups.has(node)
      ? { ring: settings.ring, keysPerSecond: this.#config.streamKeysPerSecond, freshActor: this.allocateActor() }
      : undefined;
    const start: NodeStart = { generation, gossipTable: this.#membership.table(), ...settings, ...(cleanup ? { cleanup } : {}) };
    await this.#host.startNode(node, start);
    if (cleanup) this.#cleaned(node);
    // A change committed while the node was starting skipped it (it was down): send it now.
    const now = this.#nodeSettings(node);
    if (JSON.stringify(now) !== JSON.stringify(settings)) this.#host.control(node).configure(now).catch(() => {});
    this.#membership.started(node, generation);
  }

  /** Whether stats() should skip `node` (it is paused and would not answer). */
  setSilent(node: number, silent: boolean): void {
    this.#membership.setSilent(node, silent);
  }

  /** Throws unless `node` is a member (or a node being added); names the members. */
  checkNode(action: string, node: unknown): number {
    this.#checkOpen(action);
    if (typeof node !== "number" || !Number.isInteger(node)) {
      throw new LoomTypeError(`${action} failed: node must be an integer id, got ${describe(node)}`);
    }
    if (!this.#members.includes(node) && !this.#mover.involves(node)) {
      throw new LoomRangeError(`${action} failed: no node ${node}, nodes are ${this.#members.join(", ")}`);
    }
    return node;
  }

  // ---- configuration and ring changes ---------------------------------------------------------

  /**
   * Changes settings while traffic runs (see Cluster.configure). Settings that move no keys apply
   * at once, even while a move runs; N and virtual nodes move keys first.
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
        this.#mover.applyToTransition(change);
        this.#commit(next, this.#members);
        return Promise.resolve(this.#config);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#mover.serialize(async () => {
      this.#checkOpen("configure");
      const next = applyConfigChange("configure", this.#config, change);
      if (next.n !== this.#config.n || next.vnodesPerNode !== this.#config.vnodesPerNode) {
        await this.#mover.changeRing("configure", next, this.#members);
      } else {
        this.#commit(next, this.#members);
      }
      return this.#config;
    });
  }

  /** Starts a new node (the next unused id), streams it its keys, adds it to the ring. */
  addNode(): Promise<number> {
    return this.#mover.serialize(async () => {
      this.#checkOpen("add node");
      if (this.#members.length >= limits.nodesMax) {
        throw new LoomRangeError(`add node failed: the cluster has ${this.#members.length} nodes, limit is ${limits.nodesMax}`);
      }
      const next = applyConfigChange("add node", this.#config, { nodes: this.#members.length + 1 });
      const node = this.#nextNodeId;
      await this.startNode(node);
      try {
        this.#nextNodeId = node + 1;
        await this.#mover.changeRing("add node", next, [...this.#members, node].sort((a, b) => a - b));
      } catch (error) {
        await this.#dropNode(node);
        throw error;
      }
      return node;
    });
  }

  /** Streams `node`'s keys to their new replicas, takes it off the ring, then stops it. */
  removeNode(node: number): Promise<void> {
    try {
      this.checkNode("remove node", node);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#mover.serialize(async () => {
      this.checkNode("remove node", node);
      if (this.#membership.isDown(node) && this.#config.w < 2) {
        throw new RingChangeError(`remove node failed: node ${node} is down and w is ${this.#config.w}: a write acknowledged by it alone would be lost; restart it first`);
      }
      if (this.#members.length - 1 < this.#config.n) {
        throw new LoomRangeError(`remove node failed: ${this.#members.length - 1} nodes cannot hold n = ${this.#config.n} replicas; lower n first`);
      }
      const next = applyConfigChange("remove node", this.#config, { nodes: this.#members.length - 1 });
      await this.#mover.changeRing("remove node", next, this.#members.filter((id) => id !== node));
      // Requests routed before the switch may still wait for the node's answer.
      await this.#requests.drain(this.#requests.nextId);
      await this.#dropNode(node);
    });
  }

  /** Stops a node that is not (or no longer) a member and tells the others to forget it. */
  async #dropNode(node: number): Promise<void> {
    this.#host.forgetNode(node);
    if (this.#membership.forgetDown(node)) return;
    await this.#host.stopNode(node);
  }

  /** `node` no longer owes a cleanup (it finished one, or its disk was replaced empty). */
  #cleaned(node: number): void {
    if (this.#pendingCleanups.has(node)) this.#commit(this.#config, this.#members, () => this.#pendingCleanups.delete(node));
  }

  /** `node` starts again on an empty disk: it holds no stale copy, so it owes no cleanup. */
  wiped(node: number): void {
    this.#cleaned(node);
  }

  /**
   * Makes `config` on `members` current (and whatever `change` changes: the cleanups owed), saves
   * the cluster file, and tells the nodes what changed for them.
   */
  #commit(config: ClusterConfig, members: readonly number[], change?: () => void): void {
    const before = JSON.stringify(this.#nodeSettings());
    change?.();
    this.#config = { ...config, nodes: members.length };
    this.#members = [...members];
    for (const node of [...this.#pendingCleanups]) if (!members.includes(node)) this.#pendingCleanups.delete(node);
    this.#persist();
    this.#membership.reconfigure(this.#members, this.#config.gossip);
    // Nodes learn the new members, ring, gossip and handoff settings (each applies them within a round).
    if (JSON.stringify(this.#nodeSettings()) === before) return;
    for (const node of this.#members) {
      if (!this.#membership.isDown(node)) this.#host.control(node).configure(this.#nodeSettings()).catch(() => {});
    }
  }

  /** What every node is told of the cluster (`extra`: a node joining, not yet a member). */
  #nodeSettings(extra?: number): NodeSettings {
    const members = extra === undefined ? [...this.#members] : [...new Set([...this.#members, extra])].sort((a, b) => a - b);
    return {
      members,
      ring: { nodes: [...this.#members], vnodesPerNode: this.#config.vnodesPerNode, n: this.#config.n },
      gossip: this.#config.gossip,
      handoff: this.#config.handoff,
      antiEntropy: this.#config.antiEntropy,
      readFanout: this.#config.readFanout,
      cleanupsPending: [...this.#pendingCleanups].sort((a, b) => a - b),
    };
  }

  /** Writes the cluster file with the current state. */
  persist(): void {
    this.#persist();
  }

  #persist(): void {
    const pendingCleanups = [...this.#pendingCleanups].sort((a, b) => a - b);
    this.#save({ config: this.#config, members: this.#members, nextNodeId: this.#nextNodeId, nextActor: this.#nextActor, pendingCleanups });
  }

  /**
   * A fresh actor, never handed out before (saved in the cluster file before it is returned): a
   * node starting after an unclean end stamps with one (node_actor.ts).
   */
  allocateActor(): number {
    return this.allocateActors(1)[0]!;
  }

  /** `count` fresh actors at once (one save of the cluster file). */
  allocateActors(count: number): number[] {
    if (this.#nextActor + count - 1 > limits.actorMax) throw new LoomRangeError(`allocate actor failed: every actor up to ${limits.actorMax} was used`);
    const actors = Array.from({ length: count }, (_, index) => this.#nextActor + index);
    this.#nextActor += count;
    this.#persist();
    return actors;
  }

  // ---- closing -------------------------------------------------------------------------------

  #checkOpen(action: string): void {
    if (this.#closed) throw new ClosedError(`${action} failed: cluster is closed`);
  }

  /**
   * Stops taking requests (later calls reject with ClosedError, "not-applied") and resolves once
   * the requests in flight and a running ring change have finished. The caller then stops the nodes.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#membership.stop();
    await this.#mover.idle();
    await this.#requests.drain(this.#requests.nextId);
    this.#client.close();
  }
}

export { MAIN_PEER, type RingSpec };
