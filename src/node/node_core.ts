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
import { IoError } from "../util/errors.ts";
import type { ContextSigner } from "../version/context_signer.ts";
import { emptyContext } from "../version/dotted_version_vector.ts";
import { decodeContext } from "../version/version_codec.ts";
import type { Prng } from "../io/prng.ts";
import { GossipState, type GossipConfig, type MemberView } from "../membership/gossip.ts";
import type { CounterLease } from "./counter_lease.ts";
import { KeyStreams } from "./key_stream.ts";
import { MAIN_PEER, type GetRequest, type PutRequest } from "./node_messages.ts";
import { LatencySamples, type KeyCounts, type NodeStats } from "./node_stats.ts";

export interface NodeCoreOptions {
  readonly nodeId: number;
  /** The actor this life stamps with (node_actor.ts). */
  readonly actor: number;
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
  /** The ring's members, this node among them (gossip peers). */
  readonly members: readonly number[];
  readonly gossip: GossipConfig;
}

/** A session with what its error would need to say: the action and the replicas it addressed (N). */
type Session = (
  | { readonly kind: "put"; readonly session: PutSession; readonly action: "put" | "delete" }
  | { readonly kind: "get"; readonly session: GetSession; readonly action: "get" }
) & { readonly replicas: number };

export class NodeCore {
  readonly nodeId: number;
  readonly #store: Store;
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
  readonly actor: number;
  siblingWarnings = 0;
  /** Read repairs this node could not apply (store refusing writes, sibling limit). */
  #repairsFailed = 0;

  readonly #prng: Prng;
  readonly #gossip: GossipState;
  #gossipTimer: TimerHandle | undefined;

  constructor(options: NodeCoreOptions) {
    this.actor = options.actor;
    this.#prng = options.prng;
    this.#gossip = new GossipState({
      self: options.nodeId,
      generation: options.generation,
      members: options.members,
      config: options.gossip,
      nowMs: options.clock.nowMs(),
    });
    this.nodeId = options.nodeId;
    this.#store = options.store;
    this.#transport = options.transport;
    this.#clock = options.clock;
    this.#signer = options.signer;
    this.#lease = options.lease;
    this.#counterFloor = Math.max(options.store.stats().sequence + 1, options.lease.ceiling);
    this.streams = new KeyStreams(options);
    this.#transport.onMessage((from, message) => this.#receive(from, message));
    this.#scheduleGossip();
  }

  // ---- membership ----------------------------------------------------------------------------

  /** One gossip round every intervalMs (read at each round, so a change applies within one). */
  #scheduleGossip(): void {
    this.#gossipTimer = this.#clock.setTimer(this.#gossip.config.intervalMs, () => {
      if (this.#stopped) return;
      const round = this.#gossip.tick(this.#clock.nowMs(), this.#prng);
      const message = { type: MessageType.gossip, table: round.table };
      for (const peer of round.sendTo) this.#transport.send(peer, message);
      this.#transport.send(MAIN_PEER, message);
      this.#scheduleGossip();
    });
  }

  /** The ring's members changed (a node joined or left). */
  setMembers(members: readonly number[]): void {
    this.#gossip.setMembers(members, this.#clock.nowMs());
  }

  setGossipConfig(config: GossipConfig): void {
    this.#gossip.setConfig(config);
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
    let created: { session: PutSession; effects: PutEffect[] };
    try {
      created = createPutSession({
        requestId: request.requestId,
        key: request.key,
        value: request.value,
        // The main thread checked the context too; a node trusts no request it did not verify.
        context: request.context === "" ? emptyContext : decodeContext(request.context, { key: request.key, signer: this.#signer }),
        preferenceList: request.preferenceList,
        self: this.nodeId,
        actor: this.actor,
        w: request.w,
        timeoutMs: request.timeoutMs,
        nowMs: this.#now(),
        signer: this.#signer,
        localVersions: this.#store.get(request.key),
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
    this.#track(request.requestId, { kind: "put", session: created.session, action, replicas }, request.timeoutMs);
    this.#runPutEffects(created.session, created.effects);
  }

  #startGet(request: GetRequest): void {
    let created: { session: GetSession; effects: GetEffect[] };
    try {
      created = createGetSession({
        requestId: request.requestId,
        key: request.key,
        preferenceList: request.preferenceList,
        self: this.nodeId,
        r: request.r,
        timeoutMs: request.timeoutMs,
        nowMs: this.#now(),
        signer: this.#signer,
      });
    } catch (error) {
      return this.#refuse(request.requestId, error);
    }
    this.#track(request.requestId, { kind: "get", session: created.session, action: "get", replicas: request.preferenceList.length }, request.timeoutMs);
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

  #runPutEffects(session: PutSession, effects: readonly PutEffect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case "store-local": {
          // Only createPutSession emits this, and #startPut runs it in the same synchronous block
          // as the read the session merged into: unless the store would stall first, the merged
          // set can be written as it is, without reading and merging the key a second time.
          const stored = this.#store.writeWouldWait
            ? this.#mergeLocal(effect.key, effect.versions)
            : this.#store.put(effect.key, effect.versions).then(() => true);
          stored.then(
            (ok) => this.#onPutReply(session.requestId, this.nodeId, ok),
            () => this.#onPutReply(session.requestId, this.nodeId, false),
          );
          break;
        }
        case "send":
          this.#transport.send(effect.to, { ...effect.message, type: MessageType.replicate });
          break;
        case "respond":
          this.#respond("put", effect.requestId, effect.result);
          break;
        default:
          this.siblingWarnings++;
      }
    }
  }

  #runGetEffects(session: GetSession, effects: readonly GetEffect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case "read-local":
          this.#onGetReply(session.requestId, this.nodeId, this.#readLocal(effect.key));
          break;
        case "store-local":
          this.#repair(effect.key, effect.versions);
          break;
        case "send": {
          const type = effect.message.type === "read" ? MessageType.read : MessageType.repair;
          this.#transport.send(effect.to, { ...effect.message, type });
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
      streamed: this.streams.streamed,
      store: {
        memtableEntries: store.memtable.entries,
        memtableBytes: store.memtable.usedBytes,
        tables: store.tables.length,
        tableBytes: store.tableBytes,
        records: store.memtable.entries + store.tables.reduce((sum, table) => sum + table.records, 0),
        flushes: store.flushes,
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
    const applied = applyReplicated({ key, localVersions: this.#store.get(key), incoming });
    if (!applied.ok) return false;
    await this.#store.put(key, applied.versions);
    return true;
  }

  /**
   * A read repair: merged like any replicated write, answered to nobody. A failure (the store
   * refuses writes after a disk fault, or is closing) leaves the replica as stale as it was; the
   * next read repairs it again. Counted in stats.
   */
  #repair(key: Uint8Array, versions: readonly Version[]): void {
    this.#mergeLocal(key, versions).then(
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
      ok = await this.#mergeLocal(message.key as Uint8Array, message.versions as Version[]);
    } catch {
      ok = false;
    }
    this.#transport.send(from, { type: MessageType.replicateAck, requestId: message.requestId, ok });
  }

  /** The local versions of `key`, or a refusal when the store cannot read (closed, failed, corrupt). */
  #readLocal(key: Uint8Array): ReadReply {
    try {
      return { ok: true, versions: this.#store.get(key) };
    } catch {
      return { ok: false };
    }
  }

  #read(from: number, message: Message): void {
    this.#transport.send(from, { type: MessageType.readReply, requestId: message.requestId, reply: this.#readLocal(message.key as Uint8Array) });
  }

  /** Stops sessions' timers and the streams. The caller closes the store and the transport. */
  stop(): void {
    this.#stopped = true;
    if (this.#gossipTimer !== undefined) this.#clock.clearTimer(this.#gossipTimer);
    for (const { timer } of this.#sessions.values()) this.#clock.clearTimer(timer);
    this.#sessions.clear();
    this.streams.stop();
  }
}
