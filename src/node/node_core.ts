/**
 * One storage node's protocol logic: it owns a Store and drives the pure coordinator sessions
 * (src/coordinator/) for the requests the main thread hands it, applies what its peers replicate,
 * repair and stream to it, and answers reads. Time comes from the injected Clock (wall time for
 * version timestamps too), messages from the injected Transport, so the same code runs in a node
 * worker (workers/node.ts) and in the deterministic simulator.
 *
 * Thread contract: every method runs on the thread that owns the node's store.
 */
import type { Clock, TimerHandle } from "../io/clock.ts";
import {
  createGetSession,
  onReply as onGetReply,
  onTick as onGetTick,
  type GetEffect,
  type GetResult,
  type GetSession,
  type ReadReply,
} from "../coordinator/get_session.ts";
import {
  createPutSession,
  onReply as onPutReply,
  onTick as onPutTick,
  type PutEffect,
  type PutResult,
  type PutSession,
} from "../coordinator/put_session.ts";
import { toQuorumError, type QuorumFailure } from "../coordinator/quorum_error.ts";
import { applyReplicated, TooManySiblingsError, type TooManySiblingsFailure } from "../coordinator/replica_apply.ts";
import type { Store } from "../storage/store.ts";
import type { Version } from "../storage/version_set_format.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import type { Transport } from "../transport/transport.ts";
import { encodeError } from "../util/error_codec.ts";
import { BusyError, IoError } from "../util/errors.ts";
import type { ContextSigner } from "../version/context_signer.ts";
import { emptyContext } from "../version/dotted_version_vector.ts";
import { decodeContext, decodeVersion } from "../version/version_codec.ts";
import type { Prng } from "../io/prng.ts";
import { GossipState, HINT_FLOOR_NONE, type MemberView } from "../membership/gossip.ts";
import { HintDelivery } from "../handoff/hint_delivery.ts";
import type { HintStore } from "../handoff/hint_store.ts";
import { chooseTargets, type Targets } from "../handoff/stand_ins.ts";
import type { Placement } from "../ring/ring_spec.ts";
import { mergeEntries, streamSiblingLimits, type StreamEntry } from "../coordinator/merge_entries.ts";
import { placementOf, type RingSpec } from "../ring/ring_spec.ts";
import { keyPosition } from "../ring/hash_ring.ts";
import { TrackedStore } from "../storage/tracked_store.ts";
import { limits } from "../util/limits.ts";
import type { WriteOperation } from "../storage/store.ts";
import { AntiEntropy } from "../antientropy/anti_entropy.ts";
import { buildTrees, type TreeBuild, type TreeBuildParams } from "../antientropy/tree_build.ts";
import { sameVersions } from "../handoff/hint_store.ts";
import type { CounterLease } from "./counter_lease.ts";
import { KeyStreams } from "../ringchange/key_stream.ts";
import { MAIN_PEER, type CleanupReport, type GetRequest, type NodeSettings, type PutRequest } from "./node_messages.ts";
import { LatencySamples, type KeyCounts, type NodeStats } from "./node_stats.ts";

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
  /** Where this node keeps hints for others; without one, the node neither stores nor writes hints (strict quorum). */
  readonly hints?: HintStore;
  /**
   * How anti-entropy rebuilds its trees from a snapshot of the store taken at the call: the
   * worker passes a pool job; by default (the simulator, tests) the fold runs in this thread.
   */
  readonly scanTrees?: (params: TreeBuildParams) => Promise<TreeBuild>;
}

/** A session with what its error would need to say: the action and the replicas it addressed (N). */
type Session = (
  | { readonly kind: "put"; readonly session: PutSession; readonly action: "put" | "delete" }
  | { readonly kind: "get"; readonly session: GetSession; readonly action: "get" }
) & {
  readonly replicas: number;
  /** Stand-ins of this request: fallback → the primary it holds a hint for. */
  readonly hints: ReadonlyMap<number, number>;
};

export class NodeCore {
  readonly nodeId: number;
  /** The node's store, every write reported to anti-entropy. */
  readonly #store: TrackedStore;
  readonly antiEntropy: AntiEntropy;
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #signer: ContextSigner;
  readonly #sessions = new Map<number, { session: Session; timer: TimerHandle; startedMs: number }>();
  readonly #latency = { put: new LatencySamples(), get: new LatencySamples() };
  readonly #requests = { put: 0, get: 0, failed: 0 };
  /** Key streaming for ring changes: sender, receiver and cleanup. */
  readonly streams: KeyStreams;
  #stopped = false;
  /** Lowest counter a new dot may take: above every counter this node ever stamped. */
  #counterFloor: number;
  readonly #lease: CounterLease;
  /** The actor this life of the node stamps its dots with (node_actor.ts). */
  #actor: number;
  /** Set when a replacement actor could not be recorded: the node stamps nothing more this life. */
  #actorRetired = false;
  siblingWarnings = 0;
  /** Read repairs this node could not apply (store refusing writes, sibling limit). */
  #repairsFailed = 0;

  readonly #prng: Prng;
  readonly #gossip: GossipState;
  #gossipTimer: TimerHandle | undefined;
  #settings: NodeSettings;
  #placement: Placement;
  readonly #hints: HintStore | undefined;
  readonly #recordActor: ((actor: number) => void) | undefined;
  /** The fallback actors left, the one in use first (retired ones are removed). */
  readonly #fallbackActors: number[];
  #delivery: HintDelivery | undefined;
  /** Hints not written because their primary had been down longer than handoff.windowMs. */
  #hintsSkippedWindow = 0;

  constructor(options: NodeCoreOptions) {
    this.#store = new TrackedStore(options.store);
    this.#actor = options.actor;
    this.#recordActor = options.recordActor;
    this.#fallbackActors = [...(options.fallbackActors ?? [])];
    options.hints?.onDrop((versions) => {
      // A hint stamped by the fallback actor leaves the node: that actor can no longer hold every
      // version it stamped, so it stamps nothing more.
      const current = this.#fallbackActors[0];
      if (current !== undefined && versions.some((version) => decodeVersion(version.version).dot.actor === current)) this.#fallbackActors.shift();
    });
    this.#prng = options.prng;
    this.#gossip = new GossipState({
      self: options.nodeId,
      generation: options.generation,
      members: options.settings.members,
      config: options.settings.gossip,
      nowMs: options.clock.nowMs(),
    });
    this.#settings = options.settings;
    this.#placement = placementOf(options.settings.ring);
    this.#hints = options.hints;
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
        mergeOwn: (key, versions) => this.#mergeLocal(key, versions),
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
      merge: (entries) => this.#mergeManyIfChanged(entries),
      purge: (key, versions) => this.#dropIfUnchanged(key, versions),
      isUp: (node) => this.#gossip.isUp(node),
      trusted: () => this.#store.failure === undefined,
    });
    this.#store.observe(
      (key, before, after) => this.antiEntropy.onWrite(key, before, after),
      () => this.antiEntropy.restart(),
    );
    this.nodeId = options.nodeId;
    this.#transport = options.transport;
    this.#clock = options.clock;
    this.#signer = options.signer;
    this.#lease = options.lease;
    this.#counterFloor = Math.max(options.store.stats().sequence + 1, options.lease.ceiling);
    this.streams = new KeyStreams({ ...options, store: this.#store });
    this.#transport.onMessage((from, message) => this.#receive(from, message));
    this.#scheduleGossip();
  }

  // ---- membership ----------------------------------------------------------------------------

  /** One gossip round every intervalMs (read at each round, so a change applies within one). */
  #scheduleGossip(): void {
    this.#gossipTimer = this.#clock.setTimer(this.#gossip.config.intervalMs, () => {
      if (this.#stopped) return;
      this.#gossip.setHintFloor(this.#hints?.floorMs ?? HINT_FLOOR_NONE);
      const round = this.#gossip.tick(this.#clock.nowMs(), this.#prng);
      const message = { type: MessageType.gossip, table: round.table };
      for (const peer of round.sendTo) this.#transport.send(peer, message);
      this.#transport.send(MAIN_PEER, message);
      this.#scheduleGossip();
    });
  }

  /** `peer`'s thread is known to have ended: down in this node's view until its next life beats. */
  peerExited(peer: number, generation: number): void {
    this.#gossip.markExited(peer, generation, this.#clock.nowMs());
  }

  /** The actor this life of the node stamps its own writes with (node_actor.ts). */
  get actor(): number {
    return this.#actor;
  }

  /**
   * After a ring change: drops the keys this node no longer replicates (KeyStreams.cleanup). If
   * one of them holds a version this node's actor stamped, the node takes `freshActor` first (the
   * cluster hands one out with every cleanup): its store no longer holds every version that actor
   * stamped, and should the key move back, a write stamped before its versions stream back would
   * let a reader supersede them.
   */
  cleanup(ring: RingSpec, keysPerSecond: number, freshActor: number): Promise<CleanupReport> {
    const retired = this.#actor;
    return this.streams.cleanup(ring, keysPerSecond, (versions) => {
      if (this.#actor !== retired || this.#actorRetired) return;
      if (!versions.some((version) => decodeVersion(version.version).dot.actor === retired)) return;
      try {
        this.#recordActor?.(freshActor);
        this.#actor = freshActor;
      } catch {
        this.#actorRetired = true;
      }
    });
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
        return this.#startPut(message as unknown as PutRequest);
      case MessageType.requestGet:
        return this.#startGet(message as unknown as GetRequest);
      case MessageType.replicate:
        return void this.#replicate(from, message);
      case MessageType.replicateAck:
        return this.#onPutReply(message.requestId as number, from, message.ok as boolean);
      case MessageType.read:
        return this.#read(from, message);
      case MessageType.readReply:
        return this.#onGetReply(message.requestId as number, from, message.reply as ReadReply);
      case MessageType.repair:
        return this.#repair(message.key as Uint8Array, message.versions as Version[]);
      case MessageType.streamChunk:
        return void this.streams.onStreamChunk(from, message);
      case MessageType.streamAck:
        return this.streams.onStreamAck(message);
      case MessageType.hint:
        return void this.#onHints(from, message);
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

  /** Whole milliseconds, as the sessions take them. */
  #now(): number {
    return Math.floor(this.#clock.nowMs());
  }

  // ---- coordinating --------------------------------------------------------------------------

  #startPut(request: PutRequest): void {
    // A store that failed (a disk fault) lost what this node stamped since: the node must not
    // stamp again, or its next context would cover dots it no longer holds. Nothing was sent.
    const failure = this.#store.failure;
    if (failure) {
      return this.#refuse(request.requestId, new IoError(`${request.value === null ? "delete" : "put"} failed: node ${this.nodeId} cannot write: ${failure.message}`, "", { outcome: "not-applied" }));
    }
    // Stamping reads the key's local versions and writes the new set in one synchronous block; a
    // store that would first wait for a flush makes the request wait instead.
    if (this.#store.writeWouldWait) {
      this.#store.whenWritable().then(
        () => this.#startPut(request),
        (error: unknown) => this.#refuse(request.requestId, error),
      );
      return;
    }
    const targets = this.#targets(request.preferenceList, request.fallbacks ?? [], request.quorumGroups !== undefined);
    const slotFor = targets.hints.get(this.nodeId);
    // The node's own actor stamps only what its own store keeps; a write into its hints for a down
    // primary is stamped by the fallback actor in use.
    const actor = slotFor === undefined ? (this.#actorRetired ? undefined : this.#actor) : this.#fallbackActors[0];
    if (actor === undefined) {
      return this.#refuse(
        request.requestId,
        new BusyError(
          slotFor === undefined
            ? `${request.value === null ? "delete" : "put"} failed: node ${this.nodeId} could not record a fresh actor after a ring change; it stamps nothing until it restarts`
            : `${request.value === null ? "delete" : "put"} failed: node ${this.nodeId} has no fresh actor left to stamp a write for a primary that is down (it gets new ones when it restarts); retry once a primary is back`,
          { outcome: "not-applied" },
        ),
      );
    }
    const slotVersions = this.#slot(slotFor).get(request.key);
    const localVersions = this.#everyCopy(request.key, slotFor, slotVersions);
    let created: { session: PutSession; effects: PutEffect[] };
    try {
      created = createPutSession({
        requestId: request.requestId,
        key: request.key,
        value: request.value,
        // The main thread checked the context too; a node trusts no request it did not verify.
        context: request.context === "" ? emptyContext : decodeContext(request.context, { key: request.key, signer: this.#signer }),
        preferenceList: targets.list,
        self: this.nodeId,
        actor,
        w: Math.min(request.w, targets.list.length),
        ...(request.pw ? { primaryQuorum: { nodes: targets.primaries, needed: request.pw } } : {}),
        timeoutMs: request.timeoutMs,
        nowMs: this.#now(),
        signer: this.#signer,
        localVersions,
        pruneThreshold: request.pruneThreshold,
        ...(request.quorumGroups === undefined ? {} : { quorumGroups: request.quorumGroups }),
        timestampMs: this.#clock.wallMs(),
        counterFloor: this.#counterFloor,
      });
      // The counter is durably leased before the version leaves this node (counter_lease.ts).
      this.#lease.cover(created.session.dotCounter);
    } catch (error) {
      return this.#refuse(request.requestId, error);
    }
    this.#counterFloor = Math.max(this.#counterFloor, created.session.dotCounter + 1);
    const replicas = request.quorumGroups?.[0]?.length ?? request.preferenceList.length;
    const action = request.value === null ? "delete" : "put";
    this.#track(request.requestId, { kind: "put", session: created.session, action, replicas, hints: targets.hints }, request.timeoutMs);
    this.#runPutEffects(created.session, created.effects, slotVersions);
  }

  /**
   * What this node holds of `key` in all its copies (its own store and the hints it keeps for
   * each target), merged, given the copy the write goes to (`slotFor`, and its versions). A
   * context names each actor's events of a key up to a counter, so every version this node's actor
   * stamped for the key must travel with its next one: a write stamped against one copy alone
   * would let a reader of that copy's versions supersede another copy's versions it never saw.
   */
  #everyCopy(key: Uint8Array, slotFor: number | undefined, slotVersions: readonly Version[]): readonly Version[] {
    const hints = this.#hints;
    // The common case, a primary holding no hints: its store is its only copy (no allocation).
    if (!hints || (slotFor === undefined && hints.empty)) return slotVersions;
    let merged = slotVersions;
    const absorb = (incoming: readonly Version[]) => {
      if (incoming.length === 0) return;
      const applied = applyReplicated({ key, localVersions: merged, incoming, limits: streamSiblingLimits });
      if (applied.ok) merged = applied.versions;
    };
    if (slotFor !== undefined) absorb(this.#store.get(key));
    for (const target of hints.targets()) if (target !== slotFor) absorb(hints.get(target, key));
    return merged;
  }

  #startGet(request: GetRequest): void {
    const targets = this.#targets(request.preferenceList, request.fallbacks ?? [], false);
    let created: { session: GetSession; effects: GetEffect[] };
    try {
      created = createGetSession({
        requestId: request.requestId,
        key: request.key,
        preferenceList: targets.list,
        self: this.nodeId,
        r: Math.min(request.r, targets.list.length),
        ...(request.pr ? { primaryQuorum: { nodes: targets.primaries, needed: request.pr } } : {}),
        timeoutMs: request.timeoutMs,
        nowMs: this.#now(),
        signer: this.#signer,
      });
    } catch (error) {
      return this.#refuse(request.requestId, error);
    }
    this.#track(request.requestId, { kind: "get", session: created.session, action: "get", replicas: request.preferenceList.length, hints: targets.hints }, request.timeoutMs);
    this.#runGetEffects(created.session, created.effects);
  }

  /** Keeps a session until its deadline (read repair may continue after the response). */
  #track(requestId: number, session: Session, timeoutMs: number): void {
    const timer = this.#clock.setTimer(timeoutMs, () => {
      const tracked = this.#sessions.get(requestId);
      if (!tracked) return;
      const nowMs = this.#now(); // the clock never fires a timer before its deadline
      if (tracked.session.kind === "put") this.#runPutEffects(tracked.session.session, onPutTick(tracked.session.session, nowMs));
      else this.#runGetEffects(tracked.session.session, onGetTick(tracked.session.session, nowMs));
      this.#sessions.delete(requestId);
    });
    this.#sessions.set(requestId, { session, timer, startedMs: this.#clock.nowMs() });
    this.#requests[session.kind]++;
  }

  #onPutReply(requestId: number, from: number, ok: boolean): void {
    const tracked = this.#sessions.get(requestId);
    if (tracked?.session.kind !== "put") return;
    this.#runPutEffects(tracked.session.session, onPutReply(tracked.session.session, from, ok, this.#now()));
  }

  #onGetReply(requestId: number, from: number, reply: ReadReply): void {
    const tracked = this.#sessions.get(requestId);
    if (tracked?.session.kind !== "get") return;
    this.#runGetEffects(tracked.session.session, onGetReply(tracked.session.session, from, reply, this.#now()));
    // Every replica answered and read repair was sent: nothing more can happen to the session.
    if (tracked.session.session.finished) this.#retire(requestId);
  }

  /** Forgets a session that can take no more input, and its deadline timer. */
  #retire(requestId: number): void {
    const tracked = this.#sessions.get(requestId);
    if (!tracked) return;
    this.#clock.clearTimer(tracked.timer);
    this.#sessions.delete(requestId);
  }

  /** `slotVersions`: what the written copy held, read in this same synchronous block. */
  #runPutEffects(session: PutSession, effects: readonly PutEffect[], slotVersions?: readonly Version[]): void {
    const hints = this.#sessions.get(session.requestId)?.session.hints;
    for (const effect of effects) {
      switch (effect.kind) {
        case "store-local": {
          // Only createPutSession emits this, and #startPut runs it in the same synchronous block
          // as the read the session merged into: unless the store would stall first, the merged
          // set can be written as it is, without reading and merging the key a second time.
          const hintFor = hints?.get(this.nodeId);
          const stored =
            hintFor === undefined && !this.#store.writeWouldWait
              ? this.#store.put(effect.key, effect.versions, slotVersions).then(() => true)
              : this.#slot(hintFor).merge(effect.key, effect.versions);
          stored.then(
            (ok) => this.#onPutReply(session.requestId, this.nodeId, ok),
            () => this.#onPutReply(session.requestId, this.nodeId, false),
          );
          break;
        }
        case "send": {
          const hintFor = hints?.get(effect.to);
          this.#transport.send(effect.to, { ...effect.message, type: MessageType.replicate, ...(hintFor === undefined ? {} : { hintFor }) });
          break;
        }
        case "respond":
          this.#respond("put", effect.requestId, effect.result);
          break;
        default:
          this.siblingWarnings++;
      }
    }
  }

  #runGetEffects(session: GetSession, effects: readonly GetEffect[]): void {
    const hints = this.#sessions.get(session.requestId)?.session.hints;
    for (const effect of effects) {
      switch (effect.kind) {
        case "read-local":
          this.#onGetReply(session.requestId, this.nodeId, this.#readLocal(effect.key, hints?.get(this.nodeId)));
          break;
        case "store-local":
          this.#repair(effect.key, effect.versions, hints?.get(this.nodeId));
          break;
        case "send": {
          const type = effect.message.type === "read" ? MessageType.read : MessageType.repair;
          const hintFor = hints?.get(effect.to);
          this.#transport.send(effect.to, { ...effect.message, type, ...(hintFor === undefined ? {} : { hintFor }) });
          break;
        }
        case "respond":
          this.#respond("get", effect.requestId, effect.result);
          break;
      }
    }
  }

  #respond(kind: "put" | "get", requestId: number, result: PutResult | GetResult): void {
    const tracked = this.#sessions.get(requestId);
    if (tracked) this.#latency[kind].add(this.#clock.nowMs() - tracked.startedMs);
    if (!result.ok) this.#requests.failed++;
    const answer = result.ok ? result : { ok: false, error: encodeError(this.#failure(tracked?.session, result.error)) };
    this.#transport.send(MAIN_PEER, { type: MessageType.response, requestId, node: this.nodeId, result: answer });
    // A put session ignores every input after its response; a get session may still repair.
    if (kind === "put") this.#retire(requestId);
  }

  /** The typed error for a session's failure. Sibling refusals come before anything is written. */
  #failure(session: Session | undefined, failure: QuorumFailure | TooManySiblingsFailure): Error {
    const action = session?.action ?? "put";
    if (failure.code === "LOOM_TOO_MANY_SIBLINGS") return new TooManySiblingsError(action, failure, { outcome: "not-applied" });
    const replicas = session?.replicas ?? 0;
    // A read changes nothing; a write that asked its replicas may have reached some of them.
    return toQuorumError(action, failure, replicas, action === "get" ? "not-applied" : "unknown");
  }

  /**
   * The node's counters. With `scan`, also walks the whole store (a snapshot; costs a full read)
   * to count live keys, deleted keys, and keys holding siblings.
   */
  stats(options: { scan?: boolean } = {}): NodeStats {
    const store = this.#store.stats();
    return {
      ...(options.scan ? { keys: this.#countKeys() } : {}),
      transport: this.#transport.stats(),
      nodeId: this.nodeId,
      requests: { ...this.#requests },
      latencyMs: { put: this.#latency.put.summary(), get: this.#latency.get.summary() },
      siblingWarnings: this.siblingWarnings,
      repairsFailed: this.#repairsFailed,
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
      },
    };
  }

  #countKeys(): KeyCounts {
    const counts = { live: 0, deleted: 0, withSiblings: 0, siblingsMax: 0 };
    for (const { versions } of this.#store.entries()) {
      const values = versions.filter((version) => version.value !== null).length;
      if (values === 0) counts.deleted++;
      else counts.live++;
      if (values > 1) counts.withSiblings++;
      counts.siblingsMax = Math.max(counts.siblingsMax, values);
    }
    return counts;
  }

  /** Answers a request refused before anything was written or sent. */
  #refuse(requestId: number, error: unknown): void {
    this.#requests.failed++;
    this.#transport.send(MAIN_PEER, { type: MessageType.response, requestId, node: this.nodeId, result: { ok: false, error: encodeError(error) } });
  }

  // ---- replica side --------------------------------------------------------------------------

  /**
   * Merges `incoming` into the local record (dominance rule, sibling limits) and resolves once the
   * result is durable under the store's fsync policy: true when written, false when refused.
   */
  async #mergeLocal(key: Uint8Array, incoming: readonly Version[]): Promise<boolean> {
    // Read and write in one synchronous block, so no other merge of the key interleaves.
    if (this.#store.writeWouldWait) await this.#store.whenWritable();
    const local = this.#store.get(key);
    const applied = applyReplicated({ key, localVersions: local, incoming });
    if (!applied.ok) return false;
    await this.#store.put(key, applied.versions, local);
    return true;
  }

  /**
   * An anti-entropy repair: merges each entry into the key's versions (the dominance rule: a
   * sibling is never overwritten) and writes the keys that changed, in batches that fit the store;
   * resolves with how many changed. An entry past the sibling bound is skipped (a later write
   * with a context resolves the key; the next exchange tries again).
   */
  async #mergeManyIfChanged(entries: readonly StreamEntry[]): Promise<number> {
    const batchBytesMax = Math.min(this.#store.config.memtableBytes / 4, limits.logBatchBytesMax / 2);
    let changed = 0;
    let index = 0;
    while (index < entries.length) {
      // Read and write in one synchronous block, so no other write of these keys interleaves.
      if (this.#store.writeWouldWait) await this.#store.whenWritable();
      const operations: WriteOperation[] = [];
      const befores: Version[][] = [];
      let bytes = 0;
      for (; index < entries.length && (operations.length === 0 || bytes < batchBytesMax); index++) {
        const { key, versions: incoming } = entries[index]!;
        const local = this.#store.get(key);
        const applied = applyReplicated({ key, localVersions: local, incoming, limits: streamSiblingLimits });
        if (!applied.ok || sameVersions(local, applied.versions)) continue;
        operations.push({ key, kind: "put", versions: applied.versions });
        befores.push(local);
        bytes += key.length + applied.versions.reduce((sum, version) => sum + version.version.length + (version.value?.length ?? 0) + 16, 0);
      }
      if (operations.length === 0) continue;
      await this.#store.write(operations, befores);
      changed += operations.length;
    }
    return changed;
  }

  /** A purge: drops `key` if it still holds exactly `versions` (nothing wrote it meanwhile). */
  async #dropIfUnchanged(key: Uint8Array, versions: readonly Version[]): Promise<boolean> {
    if (this.#store.writeWouldWait) await this.#store.whenWritable();
    const local = this.#store.get(key);
    if (!sameVersions(local, versions)) return false;
    await this.#store.put(key, [], local);
    return true;
  }

  /**
   * A read repair: merged like any replicated write, answered to nobody. A failure (the store
   * refuses writes after a disk fault, or is closing) leaves the replica as stale as it was; the
   * next read repairs it again. Counted in stats.
   */
  #repair(key: Uint8Array, versions: readonly Version[], hintFor?: number): void {
    // A repair for a key this node does not replicate (it answered a read as a stand-in, without
    // a hint for it) is dropped: a copy outside the replica set is one no purge would wait for.
    if (hintFor === undefined && !this.#placement.ring.preferenceListAt(keyPosition(key), this.#placement.n).includes(this.nodeId)) return;
    this.#slot(hintFor).merge(key, versions).then(
      (ok) => {
        if (!ok) this.#repairsFailed++;
      },
      () => {
        this.#repairsFailed++;
      },
    );
  }

  async #replicate(from: number, message: Message): Promise<void> {
    let ok = false;
    try {
      ok = await this.#slot(message.hintFor as number | undefined).merge(message.key as Uint8Array, message.versions as Version[]);
    } catch {
      ok = false;
    }
    this.#transport.send(from, { type: MessageType.replicateAck, requestId: message.requestId, ok });
  }

  /** The local versions of `key`, or a refusal when the store cannot read (closed, failed, corrupt). */
  #readLocal(key: Uint8Array, hintFor?: number): ReadReply {
    try {
      return { ok: true, versions: this.#slot(hintFor).get(key) };
    } catch {
      return { ok: false };
    }
  }

  #read(from: number, message: Message): void {
    const reply = this.#readLocal(message.key as Uint8Array, message.hintFor as number | undefined);
    this.#transport.send(from, { type: MessageType.readReply, requestId: message.requestId, reply });
  }

  // ---- sloppy quorum -------------------------------------------------------------------------

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

  /** The copy a replica-side operation addresses: this node's own store, or its hints for `hintFor`. */
  #slot(hintFor: number | undefined): { get(key: Uint8Array): Version[]; merge(key: Uint8Array, incoming: readonly Version[]): Promise<boolean> } {
    if (hintFor === undefined || !this.#hints) return { get: (key) => this.#store.get(key), merge: (key, incoming) => this.#mergeLocal(key, incoming) };
    const hints = this.#hints;
    return {
      get: (key) => hints.get(hintFor, key),
      merge: async (key, incoming) => (await hints.merge(hintFor, key, incoming, { bytesPerTargetMax: this.#settings.handoff.bytesPerTargetMax })) === "stored",
    };
  }

  /** A node handed back hints for this node: merge them durably, then acknowledge. */
  async #onHints(from: number, message: Message): Promise<void> {
    let ok = true;
    try {
      await mergeEntries(this.#store, message.entries as StreamEntry[]);
    } catch {
      ok = false;
    }
    this.#transport.send(from, { type: MessageType.hintAck, chunk: message.chunk, ok });
  }

  /** Stops sessions' timers and the streams. The caller closes the store and the transport. */
  stop(): void {
    this.#stopped = true;
    if (this.#gossipTimer !== undefined) this.#clock.clearTimer(this.#gossipTimer);
    this.#delivery?.stop();
    this.antiEntropy.stop();
    for (const { timer } of this.#sessions.values()) this.#clock.clearTimer(timer);
    this.#sessions.clear();
    this.streams.stop();
  }
}
