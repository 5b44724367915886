/**
 * One storage node's protocol logic, wired from the node's parts: coordination of the requests the
 * main thread hands it (coordination.ts), the replica side (replica_side.ts), gossip membership,
 * hinted handoff (src/handoff/), anti-entropy (src/antientropy/) and key streaming for ring changes
 * (src/ringchange/). It owns a Store and dispatches every message to the part that handles it.
 * Time comes from the injected Clock (wall time for version timestamps too), messages from the
 * injected Transport, so the same code runs in a node worker (workers/node.ts) and in the
 * deterministic simulator; both start it through one NodeLife (node_life.ts).
 *
 * Thread contract: every method runs on the thread that owns the node's store.
 */
import type { Clock, TimerHandle } from "../io/clock.ts";
import type { ReadReply } from "../coordinator/get_session.ts";
import type { Store } from "../storage/store.ts";
import type { Version } from "../storage/version_set_format.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import type { Transport } from "../transport/transport.ts";
import type { ContextSigner } from "../version/context_signer.ts";
import type { Prng } from "../io/prng.ts";
import { GossipState, HINT_FLOOR_NONE, type MemberView } from "../membership/gossip.ts";
import { HintDelivery } from "../handoff/hint_delivery.ts";
import type { HintStore } from "../handoff/hint_store.ts";
import { chooseTargets, type Targets } from "../handoff/stand_ins.ts";
import { placementOf, type Placement, type RingSpec } from "../ring/ring_spec.ts";
import { TrackedStore } from "../storage/tracked_store.ts";
import { AntiEntropy } from "../antientropy/anti_entropy.ts";
import { buildTrees, type TreeBuild, type TreeBuildParams } from "../antientropy/tree_build.ts";
import type { CounterLease } from "./counter_lease.ts";
import { KeyStreams } from "../ringchange/key_stream.ts";
import { Coordination } from "./coordination.ts";
import { MAIN_PEER, type CleanupReport, type GetRequest, type NodeSettings, type PutRequest } from "./node_messages.ts";
import { countKeys, type NodeStats } from "./node_stats.ts";
import { ReplicaSide } from "./replica_side.ts";
import { StampingActors } from "./stamping_actors.ts";

export interface NodeCoreOptions {
  readonly nodeId: number;
  /** The actor this life stamps with (node_actor.ts). */
  readonly actor: number;
  /**
   * Fresh actors for the writes this life coordinates as a fallback, into its hints for a primary
   * that is down (node_actor.ts). Without any, it refuses such writes. @default []
   */
  readonly fallbackActors?: readonly number[];
  /** Durably records a replacement actor (node_actor.ts) before the node stamps with it. */
  readonly recordActor?: (actor: number) => void;
  readonly store: Store;
  readonly transport: Transport;
  readonly clock: Clock;
  /** The cluster's context signer (made from its secret), for this thread only. */
  readonly signer: ContextSigner;
  /** The counter lease of the node's store directory (counter_lease.ts). */
  readonly lease: CounterLease;
  /** Gossip peer choice and other draws: seeded in the simulator. */
  readonly prng: Prng;
  /** This life's gossip generation: higher than every earlier life's. */
  readonly generation: number;
  /** Members, ring, gossip and handoff settings (the cluster core sends changes with `configure`). */
  readonly settings: NodeSettings;
  /** A gossip table to start from (what the main thread knew at the start). @default [] */
  readonly gossipTable?: readonly number[];
  /** Where this node keeps hints for others; without one, the node neither stores nor writes hints (strict quorum). */
  readonly hints?: HintStore;
  /**
   * How anti-entropy rebuilds its trees from a snapshot of the store taken at the call: the
   * worker passes a pool job; by default (the simulator, tests) the fold runs in this thread.
   */
  readonly scanTrees?: (params: TreeBuildParams) => Promise<TreeBuild>;
}

export class NodeCore {
  readonly nodeId: number;
  /** The node's store, every write reported to anti-entropy. */
  readonly #store: TrackedStore;
  readonly antiEntropy: AntiEntropy;
  readonly #transport: Transport;
  readonly #clock: Clock;
  /** Key streaming for ring changes: sender, receiver and cleanup. */
  readonly streams: KeyStreams;
  readonly #replica: ReplicaSide;
  readonly #coordination: Coordination;
  readonly #actors: StampingActors;
  #stopped = false;

  readonly #prng: Prng;
  readonly #gossip: GossipState;
  #gossipTimer: TimerHandle | undefined;
  #settings: NodeSettings;
  #placement: Placement;
  readonly #hints: HintStore | undefined;
  #delivery: HintDelivery | undefined;
  /** Hints not written because their primary had been down longer than handoff.windowMs. */
  #hintsSkippedWindow = 0;

  constructor(options: NodeCoreOptions) {
    this.#store = new TrackedStore(options.store);
    this.#actors = new StampingActors({
      nodeId: options.nodeId,
      actor: options.actor,
      fallbackActors: options.fallbackActors ?? [],
      recordActor: options.recordActor,
      lease: options.lease,
      storeSequence: options.store.stats().sequence,
    });
    options.hints?.onDrop((versions) => this.#actors.hintDropped(versions));
    options.hints?.onTargetAdded(() => this.#noteHintTargets());
    // A failed store is said at once; a listener call is synchronous, inside the failing write, so
    // the announcement goes out on a later turn.
    options.store.onFailure(() => this.#clock.setTimer(0, () => this.#noteHealth()));
    options.hints?.store.onFailure(() => this.#clock.setTimer(0, () => this.#noteHealth()));
    this.#prng = options.prng;
    this.#gossip = new GossipState({
      self: options.nodeId,
      generation: options.generation,
      members: options.settings.members,
      config: options.settings.gossip,
      nowMs: options.clock.nowMs(),
    });
    if (options.gossipTable) this.#gossip.receive(options.gossipTable, options.clock.nowMs());
    this.#settings = options.settings;
    this.#placement = placementOf(options.settings.ring);
    this.#hints = options.hints;
    this.nodeId = options.nodeId;
    this.#transport = options.transport;
    this.#clock = options.clock;
    this.#replica = new ReplicaSide({
      nodeId: options.nodeId,
      store: this.#store,
      hints: options.hints,
      transport: options.transport,
      placement: () => this.#placement,
      handoff: () => this.#settings.handoff,
      failure: () => this.#storeFailure(),
    });
    this.#coordination = new Coordination({
      nodeId: options.nodeId,
      store: this.#store,
      hints: options.hints,
      replica: this.#replica,
      actors: this.#actors,
      transport: options.transport,
      clock: options.clock,
      signer: options.signer,
      targets: (primaries, fallbacks, strict) => this.#targets(primaries, fallbacks, strict),
      failure: () => this.#storeFailure(),
      hintHolders: (target) => this.#hintHolders(target),
      readFanout: () => this.#settings.readFanout,
      isUp: (node) => node === this.nodeId || this.#gossip.isUp(node),
    });
    if (options.hints) {
      const hints = options.hints;
      this.#delivery = new HintDelivery({
        self: options.nodeId,
        hints,
        transport: options.transport,
        clock: options.clock,
        isUp: (node) => this.#gossip.isUp(node),
        placement: () => this.#placement,
        keysPerSecond: () => this.#settings.handoff.keysPerSecond,
        bytesPerTargetMax: () => this.#settings.handoff.bytesPerTargetMax,
        mergeOwn: (key, versions) => this.#replica.mergeLocal(key, versions),
      });
    }
    this.antiEntropy = new AntiEntropy({
      self: options.nodeId,
      store: this.#store,
      transport: options.transport,
      clock: options.clock,
      config: () => this.#settings.antiEntropy,
      ring: () => this.#settings.ring,
      placement: () => this.#placement,
      scan: options.scanTrees ?? ((params) => Promise.resolve(buildTrees(params, this.#store.entries()))),
      generationOf: (node) => this.#gossip.generationOf(node),
      purgeAllowed: (deletedAtMs) => this.#purgeAllowed(deletedAtMs),
      merge: (entries) => this.#replica.mergeManyIfChanged(entries),
      purge: (key, versions) => this.#replica.dropIfUnchanged(key, versions),
      isUp: (node) => this.#gossip.isUp(node),
      trusted: () => this.#store.failure === undefined,
    });
    this.#store.observe(
      (key, before, after) => this.antiEntropy.onWrite(key, before, after),
      () => this.antiEntropy.restart(),
    );
    this.streams = new KeyStreams({ ...options, store: this.#store });
    this.#transport.onMessage((from, message) => this.#receive(from, message));
    this.#scheduleGossip();
  }

  // ---- membership ----------------------------------------------------------------------------

  /** One gossip round every intervalMs (read at each round, so a change applies within one). */
  #scheduleGossip(): void {
    this.#gossipTimer = this.#clock.setTimer(this.#gossip.config.intervalMs, () => {
      if (this.#stopped) return;
      this.#noteHealth();
      this.#gossip.setHintTargets(this.#hints?.targets() ?? []);
      this.#gossip.setHintFloor(this.#hints?.floorMs ?? HINT_FLOOR_NONE);
      const round = this.#gossip.tick(this.#clock.nowMs(), this.#prng);
      const message = { type: MessageType.gossip, table: round.table };
      for (const peer of round.sendTo) this.#transport.send(peer, message);
      this.#transport.send(MAIN_PEER, message);
      this.#scheduleGossip();
    });
  }

  /** Sends this node's gossip table to every member and the main thread now, not at the next round. */
  #announce(): void {
    if (this.#stopped) return;
    const message = { type: MessageType.gossip, table: this.#gossip.table() };
    for (const member of this.#settings.members) if (member !== this.nodeId) this.#transport.send(member, message);
    this.#transport.send(MAIN_PEER, message);
  }

  /** The failure of the node's store or of its hint store, if either failed (a disk fault). */
  #storeFailure(): Error | undefined {
    return this.#store.failure ?? this.#hints?.store.failure;
  }

  /**
   * A store that failed is said at once, to every member and the main thread: from then on no
   * coordinator sends this node writes or reads and the router does not choose it, until a later
   * life (a restart) beats without the flag. Checked at every round and after every failed write.
   */
  #noteHealth(): void {
    if (this.#storeFailure() && this.#gossip.setStoreFailed()) this.#announce();
  }

  /** A target got its first hint here: readers must ask this node for it (gossip), at once. */
  #noteHintTargets(): void {
    if (this.#hints && this.#gossip.setHintTargets(this.#hints.targets())) this.#announce();
  }

  /** `peer`'s thread is known to have ended: down in this node's view until its next life beats. */
  peerExited(peer: number, generation: number): void {
    this.#gossip.markExited(peer, generation, this.#clock.nowMs());
  }

  /** The actor this life of the node stamps its own writes with (node_actor.ts). */
  get actor(): number {
    return this.#actors.own;
  }

  /**
   * After a ring change: drops the keys this node no longer replicates (KeyStreams.cleanup). If
   * one of them holds a version this node's actor stamped, the node takes `freshActor` first (the
   * cluster hands one out with every cleanup): its store no longer holds every version that actor
   * stamped, and should the key move back, a write stamped before its versions stream back would
   * let a reader supersede them.
   */
  cleanup(ring: RingSpec, keysPerSecond: number, freshActor: number): Promise<CleanupReport> {
    const retired = this.#actors.own;
    return this.streams.cleanup(ring, keysPerSecond, (versions) => this.#actors.keyDropped(versions, retired, freshActor));
  }

  /** Members, ring, gossip or handoff settings changed. */
  configure(settings: NodeSettings): void {
    const previous = this.#settings;
    this.#settings = settings;
    this.#gossip.setMembers(settings.members, this.#clock.nowMs());
    this.#gossip.setConfig(settings.gossip);
    this.#placement = placementOf(settings.ring);
    this.antiEntropy.reconfigure({
      ring: JSON.stringify(previous.ring) !== JSON.stringify(settings.ring),
      buckets: previous.antiEntropy.buckets !== settings.antiEntropy.buckets,
      intervalMs: previous.antiEntropy.intervalMs !== settings.antiEntropy.intervalMs,
    });
  }

  /** A major compaction of the node's store: keys purged since leave its files. */
  compact(): Promise<void> {
    return this.#store.compact();
  }

  /**
   * Whether a tombstone deleted at `deletedAtMs` may be purged as far as hints go: every member
   * is up in this node's view and none holds a hint older than the delete (its hint floor, from
   * gossip), so no hint anywhere can hand the deleted value back after the purge.
   */
  #purgeAllowed(deletedAtMs: number): boolean {
    // A node that has not finished dropping the keys it lost in a ring change may hold an older
    // copy of any of them, which a later ring change could bring back over a purge.
    if (this.#settings.cleanupsPending.length > 0) return false;
    for (const member of this.#settings.members) {
      const floor = member === this.nodeId ? (this.#hints?.floorMs ?? HINT_FLOOR_NONE) : this.#gossip.hintFloorOf(member);
      if (floor < 0 || (floor !== HINT_FLOOR_NONE && floor <= deletedAtMs)) return false;
    }
    return true;
  }

  /** Whether this node's gossip view holds `node` up. */
  isUp(node: number): boolean {
    return this.#gossip.isUp(node);
  }

  membership(): MemberView[] {
    return this.#gossip.view();
  }

  #receive(from: number, message: Message): void {
    if (this.#stopped) return; // the store is closing: a late message finds nothing to serve it
    switch (message.type) {
      case MessageType.requestPut:
        return this.#coordination.startPut(message as unknown as PutRequest);
      case MessageType.requestGet:
        return this.#coordination.startGet(message as unknown as GetRequest);
      case MessageType.replicate:
        return void this.#replica.onReplicate(from, message);
      case MessageType.replicateAck:
        return this.#coordination.onPutReply(message.requestId as number, from, message.ok as boolean);
      case MessageType.read:
        return this.#replica.onRead(from, message);
      case MessageType.readReply:
        return this.#coordination.onGetReply(message.requestId as number, from, message.reply as ReadReply, message.hintFor as number | undefined);
      case MessageType.repair:
        return this.#replica.repair(message.key as Uint8Array, message.versions as Version[]);
      case MessageType.streamChunk:
        return void this.streams.onStreamChunk(from, message);
      case MessageType.streamAck:
        return this.streams.onStreamAck(message);
      case MessageType.hint:
        return void this.#replica.onHints(from, message);
      case MessageType.hintAck:
        return this.#delivery?.onAck(message);
      case MessageType.merkleRequest:
      case MessageType.merkleReply:
      case MessageType.aeSegments:
      case MessageType.aeEntries:
      case MessageType.aeHashes:
      case MessageType.aePurged:
      case MessageType.aeAck:
        this.antiEntropy.receive(from, message);
        return;
      case MessageType.gossip:
        this.#gossip.receive(message.table as number[], this.#clock.nowMs());
        return;
      default:
        return;
    }
  }

  /**
   * The node's counters. With `scan`, also walks the whole store (a snapshot; costs a full read)
   * to count live keys, deleted keys, and keys holding siblings.
   */
  stats(options: { scan?: boolean } = {}): NodeStats {
    const store = this.#store.stats();
    return {
      ...(options.scan ? { keys: countKeys(this.#store.entries()) } : {}),
      transport: this.#transport.stats(),
      nodeId: this.nodeId,
      requests: this.#coordination.requests,
      latencyMs: { put: this.#coordination.latency.put.summary(), get: this.#coordination.latency.get.summary() },
      siblingWarnings: this.#coordination.siblingWarnings,
      reads: { speculative: this.#coordination.speculativeReads, readWaitMs: this.#coordination.readRoundTrip.waitMs },
      repairsFailed: this.#replica.repairsFailed,
      antiEntropy: this.antiEntropy.stats(),
      gossip: {
        members: this.#gossip.view().map(({ node, status, generation }) => ({ node, status, generation })),
        markedDown: this.#gossip.markedDown,
      },
      hints: {
        held: this.#hints?.stats() ?? [],
        ...(this.#delivery?.stats() ?? { delivered: 0, chunks: 0, chunksFailed: 0, rehomed: 0 }),
        refusedBytes: this.#hints?.refusedBytes ?? 0,
        skippedWindow: this.#hintsSkippedWindow,
      },
      streamed: this.streams.streamed,
      store: {
        memtableEntries: store.memtable.entries,
        memtableBytes: store.memtable.usedBytes,
        tables: store.tables.length,
        tableBytes: store.tableBytes,
        records: store.memtable.entries + store.tables.reduce((sum, table) => sum + table.records, 0),
        flushes: store.flushes,
        backgroundJobs: store.backgroundJobs,
        compactions: store.compactions,
        failure: this.#storeFailure()?.message ?? null,
        memory: store.memory,
      },
    };
  }

  // ---- sloppy quorum -------------------------------------------------------------------------

  /**
   * The nodes that hold hints for `target` (this one included), with whether each is up in this
   * node's view: a read of a key of `target` asks them too (coordination.ts).
   */
  #hintHolders(target: number): { node: number; up: boolean }[] {
    const holders = this.#gossip.hintHoldersOf(target).map((node) => ({ node, up: this.#gossip.isUp(node) }));
    if (this.#hints?.targets().includes(target)) holders.push({ node: this.nodeId, up: true });
    return holders;
  }

  /** Where a request goes (stand_ins.ts); `strict` (while keys move) or without a hint store: primaries only. */
  #targets(primaries: readonly number[], fallbacks: readonly number[], strict: boolean): Targets {
    const nowMs = this.#clock.nowMs();
    const targets = chooseTargets({
      self: this.nodeId,
      primaries,
      fallbacks,
      strict: strict || !this.#hints,
      isUp: (node) => this.#gossip.isUp(node),
      downForMs: (node) => this.#gossip.downForMs(node, nowMs),
      windowMs: this.#settings.handoff.windowMs,
    });
    this.#hintsSkippedWindow += targets.skippedWindow;
    return targets;
  }

  /** Stops sessions' timers and the streams. The caller closes the store and the transport. */
  stop(): void {
    this.#stopped = true;
    if (this.#gossipTimer !== undefined) this.#clock.clearTimer(this.#gossipTimer);
    this.#delivery?.stop();
    this.antiEntropy.stop();
    this.#coordination.stop();
    this.streams.stop();
  }
}
