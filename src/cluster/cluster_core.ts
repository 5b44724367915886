/**
 * The cluster's main-thread logic, independent of how nodes run: request validation and routing
 * (router.ts), the table of requests in flight, membership and liveness as the router sees them,
 * configuration changes, and the ring-change protocol (src/ringchange/ring_mover.ts). The public `Cluster`
 * (src/runtime/cluster.ts) drives it with worker threads; the simulator drives the same code with
 * every node in one thread. IO reaches it only through its injected NodeHost, Transport, Clock and
 * `save` (the cluster file).
 *
 * Thread contract: one thread (the main thread, or the simulator's).
 */
import type { Clock } from "../io/clock.ts";
import type { ReadReply } from "../coordinator/get_session.ts";
import { MAIN_PEER, type NodeSettings, type RingSpec } from "../node/node_messages.ts";
import type { NodeStats } from "../node/node_stats.ts";
import { HashRing, RING_SIZE, rangeSize } from "../ring/hash_ring.ts";
import { toKeyBytes, toValueBytes, type KeyInput, type ValueInput } from "../storage/store_input.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import type { Transport } from "../transport/transport.ts";
import { decodeError, type PlainError } from "../util/error_codec.ts";
import { ClosedError, describe, LoomRangeError, LoomTypeError, QuorumError, RingChangeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import type { ContextSigner } from "../version/context_signer.ts";
import { emptyContext, joinContexts } from "../version/dotted_version_vector.ts";
import { decodeContext, encodeContext } from "../version/version_codec.ts";
import { applyConfigChange, type ClusterConfig, type ClusterConfigChange } from "./cluster_config.ts";
import type { StoredCluster } from "./cluster_file.ts";
import type { NodeHost, NodeStart } from "./node_host.ts";
import { GossipState, type MemberStatus, type MemberView } from "../membership/gossip.ts";
import type { TimerHandle } from "../io/clock.ts";
import { resolveRequestOptions } from "./request_options.ts";
import { RequestTable, type RequestAction } from "./request_table.ts";
import { RingMover, type RingChangeReport } from "../ringchange/ring_mover.ts";
import { routeRequest } from "./router.ts";

export type { RingChangeReport } from "../ringchange/ring_mover.ts";

/** Options of one read. Unknown names, wrong types and values out of range are refused. */
export interface RequestOptions {
  /** Overrides the cluster's R for this read; 1..N. (Writes take `w`.) */
  readonly r?: number | undefined;
  /**
   * Answers that must come from the key's primaries, not from fallbacks standing in for primaries
   * that are down (Riak's pr); 0..N. @default 0
   */
  readonly pr?: number | undefined;
  /** Overrides the request timeout, in ms; 1..600000. */
  readonly timeoutMs?: number | undefined;
}

export interface WriteOptions {
  /** Overrides the cluster's W for this write; 1..N. */
  readonly w?: number | undefined;
  /**
   * Acknowledgements that must come from the key's primaries, not from fallbacks holding hints
   * (Riak's pw); 0..N. @default 0
   */
  readonly pw?: number | undefined;
  /** Overrides the request timeout, in ms; 1..600000. */
  readonly timeoutMs?: number | undefined;
  /** The context from an earlier get: the write replaces exactly the siblings it saw. */
  readonly context?: string | undefined;
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
  /**
   * The context of the key's versions at the coordinator after the write: the new version and
   * the concurrent siblings it kept. Pass it with the next write of this key, which then replaces
   * exactly `values`.
   */
  readonly context: string;
  /**
   * What that context covers, newest first: the written value (not for a delete) and the siblings
   * the write did not replace, as Riak's return_body gives them. One value when nobody wrote the
   * key concurrently.
   */
  readonly values: Uint8Array[];
  /** The node that coordinated the write (the first live replica of the key). */
  readonly coordinator: number;
}

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
}

/** A change of a node's status as the main thread sees it. */
export interface MembershipChange {
  readonly node: number;
  readonly status: MemberStatus;
  readonly generation: number;
  /** The main thread's monotonic clock, ms. */
  readonly atMs: number;
  /** "gossip": its heartbeat stopped (or rose again); "exit": its thread ended; "start": it was started. */
  readonly source: "gossip" | "exit" | "start";
}

export interface ClusterStats {
  readonly config: ClusterConfig;
  /** Members the router sends nothing to (crashed, or found dead). */
  readonly down: number[];
  readonly nodes: NodeStats[];
  readonly ringChanges: RingChangeReport[];
  /** Each member's status and generation in the main thread's gossip view. */
  readonly membership: MemberView[];
}

export class ClusterCore {
  readonly #host: NodeHost;
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #signer: ContextSigner;
  readonly #save: (state: ClusterState) => void;
  readonly #requests: RequestTable;
  readonly #mover: RingMover<ClusterConfig>;
  /** replicaValues() reads waiting for one replica's answer. */
  readonly #inspections = new Map<number, (reply: ReadReply | null) => void>();
  #nextInspection = 1;
  #config: ClusterConfig;
  /** The ring's nodes, ascending. */
  #members: number[];
  #nextNodeId: number;
  #nextActor: number;
  #ring: HashRing;
  /** Members known to be down: requests route around them, ring changes refuse them. */
  readonly #down = new Set<number>();
  /** The gossip generation each node was last started with. */
  readonly #generations = new Map<number, number>();
  /** The main thread's view: a passive gossip member, fed by every node's table each round. */
  readonly #gossip: GossipState;
  /** Members whose heartbeat stopped in that view: the router sends them nothing. */
  readonly #gossipDown = new Set<number>();
  #gossipTimer: TimerHandle | undefined;
  readonly #membershipListeners = new Set<(change: MembershipChange) => void>();
  /** What the router avoids: nodes whose thread ended, or whose heartbeat stopped. */
  readonly #unavailable = { has: (node: number) => this.#down.has(node) || this.#gossipDown.has(node) };
  /** Nodes whose control calls would not answer for a while (paused on purpose): stats skips them. */
  readonly #silent = new Set<number>();
  #closed = false;

  constructor(options: ClusterCoreOptions) {
    this.#host = options.host;
    this.#transport = options.transport;
    this.#clock = options.clock;
    this.#signer = options.signer;
    this.#save = options.save;
    this.#config = options.state.config;
    this.#members = [...options.state.members];
    this.#nextNodeId = options.state.nextNodeId;
    this.#nextActor = options.state.nextActor;
    this.#ring = HashRing.build({ nodes: this.#members, vnodesPerNode: this.#config.vnodesPerNode });
    this.#requests = new RequestTable(options.clock);
    this.#gossip = new GossipState({ generation: 0, members: this.#members, config: this.#config.gossip, nowMs: options.clock.nowMs() });
    this.#scheduleGossipCheck();
    this.#mover = new RingMover({
      host: options.host,
      freshActor: () => this.allocateActor(),
      clock: options.clock,
      requests: this.#requests,
      isDown: (node) => this.#unavailable.has(node),
      switchTo: (config, members, ring) => {
        this.#ring = ring;
        this.#commit(config, members);
      },
      current: () => ({ config: this.#config, members: this.#members, ring: this.#ring }),
      applyChange: (config, change) => applyConfigChange("configure", config, change),
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
    return this.#down.has(node);
  }

  // ---- requests ----------------------------------------------------------------------------

  /** See Cluster.put. Every failure is a rejection; refusals come before anything is sent. */
  async put(key: KeyInput, value: ValueInput, options?: WriteOptions): Promise<WriteResult> {
    const keyBytes = ownBytes(key, toKeyBytes("put", key));
    const valueBytes = ownBytes(value, toValueBytes("put", value));
    return this.#write("put", keyBytes, valueBytes, options);
  }

  async delete(key: KeyInput, options?: WriteOptions): Promise<WriteResult> {
    return this.#write("delete", ownBytes(key, toKeyBytes("delete", key)), null, options);
  }

  async get(key: KeyInput, options?: RequestOptions): Promise<GetResult> {
    const keyBytes = ownBytes(key, toKeyBytes("get", key));
    this.#checkOpen("get");
    const { quorum: r, primaryQuorum: pr, timeoutMs } = resolveRequestOptions("get", options, this.#config);
    // While keys move, reads stay on the old replicas: they hold every acknowledged write (writes
    // reach W of them), and the new ones are complete only once streaming has finished.
    const result = (await this.#send("get", keyBytes, r, pr, timeoutMs, null, {
      type: MessageType.requestGet,
      key: keyBytes,
      r,
      timeoutMs,
      pr,
    })) as { values: Uint8Array[]; context: string; coordinator: number };
    return { values: [...result.values], context: result.context, coordinator: result.coordinator };
  }

  async #write(action: "put" | "delete", key: Uint8Array, value: Uint8Array | null, options: WriteOptions | undefined): Promise<WriteResult> {
    this.#checkOpen(action);
    const { quorum: w, primaryQuorum: pw, timeoutMs, context } = resolveRequestOptions(action, options, this.#config);
    // A bad context (made up, altered, another key's or cluster's) is refused here, before anything is sent.
    if (context !== "") decodeContext(context, { key, signer: this.#signer });
    // While keys move, a write goes to the old and the new replicas and needs W of each, so that
    // whichever ring serves the next read, W of its replicas hold the write.
    const moving = this.#mover.transition;
    const pendingList = moving ? moving.ring.preferenceList(key, moving.config.n) : null;
    const body = { type: MessageType.requestPut, key, value, context, w, timeoutMs, pruneThreshold: this.#config.pruneThreshold, pw };
    const result = (await this.#send(action, key, w, pw, timeoutMs, pendingList, body)) as { context: string; values: Uint8Array[]; coordinator: number };
    return { context: result.context, values: [...result.values], coordinator: result.coordinator };
  }

  /** See Cluster.joinContexts. */
  joinContexts(key: KeyInput, contexts: readonly string[]): string {
    const binding = { key: toKeyBytes("join contexts", key), signer: this.#signer };
    if (!Array.isArray(contexts)) throw new LoomTypeError(`join contexts failed: contexts is ${describe(contexts)}, must be an array of strings`);
    const decoded = contexts.map((context) => (context === "" ? emptyContext : decodeContext(context, binding)));
    return encodeContext(joinContexts(decoded), binding);
  }

  /**
   * Routes a request (router.ts) and hands it to its coordinator. Refused at once, "not-applied",
   * when fewer replicas are up than it needs: nothing is sent.
   */
  #send(action: RequestAction, key: Uint8Array, required: number, primariesRequired: number, timeoutMs: number, pendingList: number[] | null, body: Message): Promise<unknown> {
    // The key's nodes in ring order: N primaries, then up to N fallbacks (enough stand-ins for
    // every primary to be down).
    const n = this.#config.n;
    const order = this.#ring.preferenceList(key, Math.min(this.#members.length, 2 * n));
    const route = routeRequest({
      action,
      preferenceList: order.slice(0, n),
      fallbacks: order.slice(n),
      pendingList,
      required,
      primariesRequired,
      down: this.#unavailable,
    });
    if (!route.ok) {
      const { acknowledged, replicas, detail } = route;
      return Promise.reject(new QuorumError({ action, acknowledged, required, replicas, outcome: "not-applied", detail }));
    }
    // The coordinator answers by its deadline; the guard covers a coordinator that died or hangs.
    const { id, answer } = this.#requests.open({
      action,
      replicas: route.replicas,
      required,
      coordinator: route.coordinator,
      guardMs: timeoutMs * 2 + 1000,
    });
    this.#transport.send(route.coordinator, { ...body, ...route.fields, requestId: id });
    return answer;
  }

  #onMessage(message: Message): void {
    if (message.type === MessageType.gossip) {
      return this.#membershipEvents(this.#gossip.receive(message.table as number[], this.#clock.nowMs()), "gossip");
    }
    if (message.type === MessageType.readReply) {
      const waiting = this.#inspections.get(message.requestId as number);
      this.#inspections.delete(message.requestId as number);
      return waiting?.(message.reply as ReadReply);
    }
    if (message.type !== MessageType.response) return;
    const result = message.result as { ok: true } | { ok: false; error: PlainError };
    this.#requests.settle(
      message.requestId as number,
      result.ok ? { ok: true, value: { ...result, coordinator: message.node as number } } : { ok: false, error: decodeError(result.error) },
    );
  }

  /**
   * What each replica of `key` holds itself: no quorum, no merge, no read repair; null for a
   * replica that is down or did not answer within the request timeout.
   */
  async replicaValues(key: KeyInput): Promise<{ node: number; values: Uint8Array[] | null }[]> {
    const keyBytes = toKeyBytes("replica values", key);
    this.#checkOpen("replica values");
    const replicas = this.#ring.preferenceList(keyBytes, this.#config.n);
    return Promise.all(
      replicas.map(async (node) => {
        if (this.#down.has(node)) return { node, values: null };
        const requestId = this.#nextInspection++;
        const reply = await new Promise<ReadReply | null>((resolve) => {
          const timer = this.#clock.setTimer(this.#config.requestTimeoutMs, () => {
            this.#inspections.delete(requestId);
            resolve(null);
          });
          this.#inspections.set(requestId, (answer) => {
            this.#clock.clearTimer(timer);
            resolve(answer);
          });
          this.#transport.send(node, { type: MessageType.read, requestId, key: keyBytes });
        });
        if (!reply?.ok) return { node, values: null };
        return { node, values: reply.versions.flatMap((version) => (version.value === null ? [] : [version.value])) };
      }),
    );
  }

  preferenceList(key: KeyInput): number[] {
    return this.#ring.preferenceList(toKeyBytes("preference list", key), this.#config.n);
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
    const asked = nodes.filter((node) => !this.#unavailable.has(node) && !this.#silent.has(node));
    const answers = await Promise.all(asked.map((node) => this.#host.control(node).stats(scan)));
    const down = [...new Set([...this.#down, ...this.#gossipDown])].sort((a, b) => a - b);
    return { config: this.#config, down, nodes: answers, ringChanges: this.#mover.reports(), membership: this.membership() };
  }

  /**
   * A major compaction on every node that is up (Cassandra's `nodetool compact`): each merges its
   * tables into one, so deleted keys purged by anti-entropy leave the files. Resolves with the
   * nodes compacted; a node that fails or stops meanwhile is left out.
   */
  async compact(): Promise<number[]> {
    this.#checkOpen("compact");
    const nodes = this.#members.filter((node) => !this.#unavailable.has(node) && !this.#silent.has(node));
    const done = await Promise.all(nodes.map((node) => this.#host.control(node).compact().then(() => true, () => false)));
    return nodes.filter((_node, index) => done[index]);
  }

  // ---- membership and liveness ---------------------------------------------------------------

  /** Checks every member's heartbeat age once per gossip interval (read at each round). */
  #scheduleGossipCheck(): void {
    this.#gossipTimer = this.#clock.setTimer(this.#config.gossip.intervalMs, () => {
      if (this.#closed) return;
      this.#membershipEvents(this.#gossip.tick(this.#clock.nowMs()).events, "gossip");
      this.#scheduleGossipCheck();
    });
  }

  #membershipEvents(events: readonly { node: number; status: MemberStatus; generation: number; atMs: number }[], source: MembershipChange["source"]): void {
    for (const event of events) {
      if (source === "gossip") {
        if (event.status === "down") this.#gossipDown.add(event.node);
        else this.#gossipDown.delete(event.node);
      }
      this.#emit({ ...event, source });
    }
  }

  #emit(change: MembershipChange): void {
    for (const listener of [...this.#membershipListeners]) {
      try {
        listener(change);
      } catch {
        // a listener's failure is its own: membership goes on
      }
    }
  }

  /** Calls `listener` on every status change; returns the function that stops it. */
  onMembership(listener: (change: MembershipChange) => void): () => void {
    this.#membershipListeners.add(listener);
    return () => this.#membershipListeners.delete(listener);
  }

  /** Each member's status and generation as the main thread sees them. */
  membership(): MemberView[] {
    return this.#gossip.view().map((member) => (this.#down.has(member.node) ? { ...member, status: "down" as const } : member));
  }

  /**
   * `node` is down (its thread crashed or exited): requests route around it, the requests it
   * coordinates fail at once ("unknown": the replicas it reached may hold their writes), and a
   * ring change that involves it is abandoned.
   */
  nodeDown(node: number, reason: string): Promise<void> {
    if (!this.#members.includes(node) && !this.#mover.involves(node)) return Promise.resolve();
    if (!this.#down.has(node)) this.#emit({ node, status: "down", generation: this.#generations.get(node) ?? 0, atMs: this.#clock.nowMs(), source: "exit" });
    this.#down.add(node);
    const generation = this.#generations.get(node) ?? 0;
    this.#gossip.markExited(node, generation, this.#clock.nowMs());
    // Its peers stop sending it work at once, as they would on a connection that reset.
    const told = this.#members
      .filter((member) => member !== node && !this.#down.has(member))
      .map((member) => this.#host.control(member).peerExited(node, generation).catch(() => {}));
    this.#mover.nodeDown(node);
    this.#requests.abandonCoordinatedBy(node, `coordinating node ${node} ${reason}`);
    return Promise.all(told).then(() => {});
  }

  /**
   * Starts node `node` (a new one, or one whose thread is not running) through the host, with a
   * gossip generation above its earlier ones and the ring's members, and routes to it again.
   */
  async startNode(node: number): Promise<void> {
    const generation = Math.max((this.#generations.get(node) ?? 0) + 1, Math.floor(this.#clock.wallMs()));
    this.#generations.set(node, generation);
    const settings = this.#nodeSettings(node);
    const start: NodeStart = { generation, ...settings };
    await this.#host.startNode(node, start);
    this.#down.delete(node);
    this.#gossipDown.delete(node);
    // A change committed while the node was starting skipped it (it was down): send it now.
    const now = this.#nodeSettings(node);
    if (JSON.stringify(now) !== JSON.stringify(settings)) this.#host.control(node).configure(now).catch(() => {});
    this.#gossip.noteStart(node, generation, this.#clock.nowMs());
    this.#emit({ node, status: "up", generation, atMs: this.#clock.nowMs(), source: "start" });
  }

  /** Whether stats() should skip `node` (it is paused and would not answer). */
  setSilent(node: number, silent: boolean): void {
    if (silent) this.#silent.add(node);
    else this.#silent.delete(node);
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
      if (this.#down.has(node) && this.#config.w < 2) {
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
    if (this.#down.delete(node)) return;
    await this.#host.stopNode(node);
  }

  #commit(config: ClusterConfig, members: readonly number[]): void {
    const before = JSON.stringify(this.#nodeSettings());
    this.#config = { ...config, nodes: members.length };
    this.#members = [...members];
    this.#persist();
    this.#gossip.setConfig(this.#config.gossip);
    this.#gossip.setMembers(this.#members, this.#clock.nowMs());
    for (const node of [...this.#gossipDown]) if (!this.#members.includes(node)) this.#gossipDown.delete(node);
    // Nodes learn the new members, ring, gossip and handoff settings (each applies them within a round).
    if (JSON.stringify(this.#nodeSettings()) === before) return;
    for (const node of this.#members) {
      if (!this.#down.has(node)) this.#host.control(node).configure(this.#nodeSettings()).catch(() => {});
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
    };
  }

  /** Writes the cluster file with the current state. */
  persist(): void {
    this.#persist();
  }

  #persist(): void {
    this.#save({ config: this.#config, members: this.#members, nextNodeId: this.#nextNodeId, nextActor: this.#nextActor });
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
    if (this.#gossipTimer !== undefined) this.#clock.clearTimer(this.#gossipTimer);
    await this.#mover.idle();
    await this.#requests.drain(this.#requests.nextId);
    for (const waiting of this.#inspections.values()) waiting(null);
    this.#inspections.clear();
  }
}

/** `bytes` as the request's own: a caller's buffer is copied, so changing it later changes nothing. */
function ownBytes(input: unknown, bytes: Uint8Array): Uint8Array {
  return input === bytes ? bytes.slice() : bytes;
}

export { MAIN_PEER, type RingSpec };
