/**
 * One storage node, as run inside its worker thread: it owns a Store and drives the pure
 * coordinator sessions (src/coordinator/) with real time, the store and the transport. The main
 * thread sends it client requests; peers send it replication, reads and repairs.
 *
 * Thread contract: everything runs on the node's worker thread.
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
import { applyReplicated, siblingLimits, TooManySiblingsError, type TooManySiblingsFailure } from "../coordinator/replica_apply.ts";
import { encodeError } from "../util/error_codec.ts";
import { HashRing, keyPosition } from "../ring/hash_ring.ts";
import { streamTargets, type Placement } from "../ring/ring_change.ts";
import { RingChangeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import type { Store, WriteOperation } from "../storage/store.ts";
import type { Version } from "../storage/version_set_format.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import type { Transport, TransportStats } from "../transport/transport.ts";
import type { ContextSigner } from "../version/context_signer.ts";
import { emptyContext } from "../version/dotted_version_vector.ts";
import { decodeContext } from "../version/version_codec.ts";

/** The main thread's peer number on every node's transport. */
export const MAIN_PEER = 1_000_000;

export interface PutRequest {
  readonly type: typeof MessageType.requestPut;
  readonly requestId: number;
  readonly key: Uint8Array;
  /** null deletes (writes a tombstone). */
  readonly value: Uint8Array | null;
  readonly context: string;
  readonly preferenceList: readonly number[];
  readonly w: number;
  readonly timeoutMs: number;
  readonly pruneThreshold: number;
  /** While the ring changes: the old and the new replica set, each needing W (put_session.ts). */
  readonly quorumGroups?: readonly (readonly number[])[];
}

export interface GetRequest {
  readonly type: typeof MessageType.requestGet;
  readonly requestId: number;
  readonly key: Uint8Array;
  readonly preferenceList: readonly number[];
  readonly r: number;
  readonly timeoutMs: number;
}

/** What the node answers the main thread: a session's result, or a refused request. */
export interface ResponseMessage {
  readonly type: typeof MessageType.response;
  readonly requestId: number;
  readonly result: unknown;
}

/** A ring as the main thread describes it to the nodes: they rebuild the same HashRing from it. */
export interface RingSpec {
  readonly nodes: readonly number[];
  readonly vnodesPerNode: number;
  readonly n: number;
}

/** The main thread's order to stream this node's share of the keys whose replicas change. */
export interface StreamPlan {
  readonly streamId: number;
  readonly before: RingSpec;
  readonly after: RingSpec;
  /** Most keys this node sends per second (the cluster's streamKeysPerSecond). */
  readonly keysPerSecond: number;
}

export interface StreamReport {
  readonly streamId: number;
  /** Keys this node read while scanning its store. */
  readonly keysScanned: number;
  /** (key, target) pairs sent: a key that gains two replicas is sent twice. */
  readonly keysSent: number;
  /**
   * (key, new replica) pairs this node answers for: each is counted by exactly one node (the
   * key's first replica before the change), so the cluster's sum is the copies the move creates.
   */
  readonly keysMoved: number;
  /** Of the keys sent, those the target did not hold when they arrived (dual writes may come first). */
  readonly keysNew: number;
  readonly chunks: number;
}

export interface CleanupReport {
  readonly keysScanned: number;
  /** Keys removed because this node no longer replicates them. */
  readonly keysDropped: number;
}

/** Stream chunks: at most this many keys, and about this many bytes of versions, per chunk. */
const STREAM_CHUNK_KEYS = 256;
const STREAM_CHUNK_BYTES = 256 * 1024;
/** The scan lets queued requests run after this many keys even when it sends nothing. */
const STREAM_SCAN_YIELD_KEYS = 1024;
/** Chunks in flight to one target before the stream waits for an acknowledgement. */
const STREAM_WINDOW = 4;
/** A target that has not acknowledged a chunk by then failed: the ring change is abandoned. */
const STREAM_ACK_TIMEOUT_MS = 30_000;
/**
 * Streamed copies are merged with a larger sibling bound than client writes: refusing one would
 * abandon the whole ring change, and the union of two replicas' sets can exceed siblingsMax only
 * after writers ignored the limit's warnings.
 */
const streamSiblingLimits = { siblingsWarn: siblingLimits.siblingsMax, siblingsMax: limits.versionsPerRecordMax };

/** The ring a RingSpec describes, rebuilt exactly as the main thread built it, with its N. */
function placementOf(spec: RingSpec): Placement {
  return { ring: HashRing.build({ nodes: spec.nodes, vnodesPerNode: spec.vnodesPerNode }), n: spec.n };
}

interface StreamEntry {
  readonly key: Uint8Array;
  readonly versions: readonly Version[];
}

/** A session with what its error would need to say: the action and the replicas it addressed (N). */
type Session = (
  | { readonly kind: "put"; readonly session: PutSession; readonly action: "put" | "delete" }
  | { readonly kind: "get"; readonly session: GetSession; readonly action: "get" }
) & { readonly replicas: number };

/** The last LATENCY_SAMPLES request latencies of one kind, for percentiles. */
const LATENCY_SAMPLES = 1024;

class LatencySamples {
  readonly #samples = new Float64Array(LATENCY_SAMPLES);
  #count = 0;

  add(milliseconds: number): void {
    this.#samples[this.#count++ % LATENCY_SAMPLES] = milliseconds;
  }

  /** p50, p99 and max of the samples kept, in milliseconds (0 when there are none). */
  summary(): { p50: number; p99: number; max: number; samples: number } {
    const kept = this.#samples.slice(0, Math.min(this.#count, LATENCY_SAMPLES)).sort();
    const at = (quantile: number) => (kept.length === 0 ? 0 : kept[Math.min(kept.length - 1, Math.floor(quantile * kept.length))]!);
    return { p50: at(0.5), p99: at(0.99), max: at(1), samples: kept.length };
  }
}

/** A full scan's counts (stats with `scan`). */
export interface KeyCounts {
  /** Keys with at least one value. */
  readonly live: number;
  /** Keys whose versions are all tombstones. */
  readonly deleted: number;
  /** Keys holding more than one value (siblings), and the most any key holds. */
  readonly withSiblings: number;
  readonly siblingsMax: number;
}

export interface NodeStats {
  readonly nodeId: number;
  /** Only when asked for with `scan` (a full store scan). */
  readonly keys?: KeyCounts;
  /** The node's transport counters: messages, postMessage batches, clone fallbacks, malformed frames. */
  readonly transport: TransportStats;
  readonly requests: { readonly put: number; readonly get: number; readonly failed: number };
  readonly latencyMs: { readonly put: ReturnType<LatencySamples["summary"]>; readonly get: ReturnType<LatencySamples["summary"]> };
  readonly siblingWarnings: number;
  /** Keys streamed by ring changes since the node started: sent, received, and new on arrival. */
  readonly streamed: { readonly keysSent: number; readonly keysReceived: number; readonly keysNew: number };
  readonly store: {
    readonly memtableEntries: number;
    readonly memtableBytes: number;
    readonly tables: number;
    readonly tableBytes: number;
    /** Records in memtable and tables: an upper bound on keys (a key may have several records). */
    readonly records: number;
    readonly flushes: number;
    readonly compactions: number;
  };
}

export class NodeRuntime {
  readonly nodeId: number;
  readonly #store: Store;
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #signer: ContextSigner;
  readonly #sessions = new Map<number, { session: Session; timer: TimerHandle; startedMs: number }>();
  readonly #latency = { put: new LatencySamples(), get: new LatencySamples() };
  readonly #requests = { put: 0, get: 0, failed: 0 };
  /** Chunks this node sent and awaits acknowledgement of, by chunk number. */
  readonly #streamAcks = new Map<number, { resolve: (keysNew: number) => void; reject: (error: Error) => void; timer: TimerHandle }>();
  #nextChunk = 1;
  /** Streams the main thread abandoned (abortStream): their scans stop at the next chunk. */
  readonly #abortedStreams = new Set<number>();
  #stopped = false;
  readonly #streamed = { keysSent: 0, keysReceived: 0, keysNew: 0 };
  /** Lowest counter a new dot may take: grows with every write this node coordinates. */
  #counterFloor: number;
  siblingWarnings = 0;

  /** `signer`: the cluster's context signer (made from its secret), for this thread only. */
  constructor(options: { nodeId: number; store: Store; transport: Transport; clock: Clock; signer: ContextSigner }) {
    this.nodeId = options.nodeId;
    this.#store = options.store;
    this.#transport = options.transport;
    this.#clock = options.clock;
    this.#signer = options.signer;
    this.#counterFloor = options.store.stats().sequence + 1;
    this.#transport.onMessage((from, message) => this.#receive(from, message));
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
        return void this.#mergeLocal(message.key as Uint8Array, message.versions as Version[]);
      case MessageType.streamChunk:
        return void this.#onStreamChunk(from, message);
      case MessageType.streamAck:
        return this.#onStreamAck(message);
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
        w: request.w,
        timeoutMs: request.timeoutMs,
        nowMs: this.#now(),
        signer: this.#signer,
        localVersions: this.#store.get(request.key),
        pruneThreshold: request.pruneThreshold,
        ...(request.quorumGroups === undefined ? {} : { quorumGroups: request.quorumGroups }),
        timestampMs: Date.now(),
        counterFloor: this.#counterFloor++,
      });
    } catch (error) {
      return this.#refuse(request.requestId, error);
    }
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
          void this.#mergeLocal(effect.key, effect.versions);
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
      streamed: { ...this.#streamed },
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

  // ---- streaming keys for a ring change -------------------------------------------------------

  /**
   * Scans the store once and sends every key whose replica set changes from `plan.before` to
   * `plan.after`, and of which this node was a replica before, to each of its new replicas, in
   * chunks, at most STREAM_WINDOW chunks in flight per target. Resolves when every chunk is
   * acknowledged (durably merged by the target); rejects when a target does not answer in time.
   * The scan sees the store as of the call: writes after it reach the new replicas through the
   * coordinators, which write to the old and new replica sets while the ring changes.
   */
  async streamKeys(plan: StreamPlan): Promise<StreamReport> {
    const before = placementOf(plan.before);
    const after = placementOf(plan.after);
    const chunkBytesMax = Math.min(STREAM_CHUNK_BYTES, Math.floor(this.#store.config.memtableBytes / 8));
    const outgoing = new Map<number, { entries: StreamEntry[]; bytes: number; inFlight: Promise<number>[] }>();
    const report = { streamId: plan.streamId, keysScanned: 0, keysSent: 0, keysMoved: 0, keysNew: 0, chunks: 0 };
    const startedMs = this.#clock.nowMs();
    let sentInChunks = 0;

    const checkAborted = () => {
      if (this.#abortedStreams.delete(plan.streamId)) throw new RingChangeError(`stream failed: stream ${plan.streamId} was abandoned`);
    };
    const send = async (target: number, force: boolean): Promise<void> => {
      const box = outgoing.get(target)!;
      if (box.entries.length === 0 || (!force && box.entries.length < STREAM_CHUNK_KEYS && box.bytes < chunkBytesMax)) return;
      while (box.inFlight.length >= STREAM_WINDOW) report.keysNew += await box.inFlight.shift()!;
      checkAborted();
      const chunk = this.#nextChunk++;
      const acknowledged = new Promise<number>((resolve, reject) => {
        const timer = this.#clock.setTimer(STREAM_ACK_TIMEOUT_MS, () => {
          this.#streamAcks.delete(chunk);
          reject(new RingChangeError(`stream failed: node ${target} did not acknowledge chunk ${chunk} within ${STREAM_ACK_TIMEOUT_MS} ms`));
        });
        this.#streamAcks.set(chunk, { resolve, reject, timer });
      });
      acknowledged.catch(() => {}); // awaited below; a rejection before then is not unhandled
      box.inFlight.push(acknowledged);
      this.#transport.send(target, { type: MessageType.streamChunk, streamId: plan.streamId, chunk, entries: box.entries });
      report.chunks++;
      sentInChunks += box.entries.length;
      box.entries = [];
      box.bytes = 0;
      // Pace the stream to keysPerSecond, and in any case let client requests queued behind the
      // scan run between chunks: a move shares the node with the traffic.
      await this.#paceTo(startedMs, sentInChunks, plan.keysPerSecond);
    };

    for (const entry of this.#store.entries()) {
      if (++report.keysScanned % STREAM_SCAN_YIELD_KEYS === 0) {
        await this.#pause(0);
        checkAborted();
      }
      const position = keyPosition(entry.key);
      const targets = streamTargets(before, after, position, this.nodeId);
      if (targets.length > 0 && before.ring.preferenceListAt(position, before.n)[0] === this.nodeId) report.keysMoved += targets.length;
      for (const target of targets) {
        let box = outgoing.get(target);
        if (!box) outgoing.set(target, (box = { entries: [], bytes: 0, inFlight: [] }));
        box.entries.push(entry);
        box.bytes += entry.key.length + entry.versions.reduce((sum, version) => sum + version.version.length + (version.value?.length ?? 0), 0);
        report.keysSent++;
        await send(target, false);
      }
    }
    for (const [target, box] of outgoing) {
      await send(target, true);
      for (const acknowledged of box.inFlight) report.keysNew += await acknowledged;
    }
    this.#abortedStreams.delete(plan.streamId); // an abort that came after the last chunk
    this.#streamed.keysSent += report.keysSent;
    return report;
  }

  /**
   * After a ring change: removes every key this node does not replicate under `ring` (it lost the
   * key's range, or N went down). Riak's handoff does the same; Cassandra leaves it to `nodetool
   * cleanup`. Each key is replaced by an empty version set (absent; dropped by the next bottommost
   * compaction), in batches paced to `keysPerSecond`. The caller runs it only when no move is in
   * flight and requests routed under the old ring have finished, so no write for a key this node
   * replicates can be undone by it.
   */
  async cleanup(ring: RingSpec, keysPerSecond: number): Promise<CleanupReport> {
    const placement = placementOf(ring);
    const report = { keysScanned: 0, keysDropped: 0 };
    const startedMs = this.#clock.nowMs();
    let batch: WriteOperation[] = [];
    const drop = async () => {
      if (batch.length === 0) return;
      if (this.#store.writeWouldWait) await this.#store.whenWritable();
      const writing = this.#store.write(batch);
      report.keysDropped += batch.length;
      batch = [];
      await writing;
      await this.#paceTo(startedMs, report.keysDropped, keysPerSecond);
    };
    for (const entry of this.#store.entries()) {
      if (++report.keysScanned % STREAM_SCAN_YIELD_KEYS === 0) await this.#pause(0);
      if (placement.ring.preferenceListAt(keyPosition(entry.key), placement.n).includes(this.nodeId)) continue;
      batch.push({ key: entry.key, kind: "put", versions: [] });
      if (batch.length >= STREAM_CHUNK_KEYS) await drop();
    }
    await drop();
    return report;
  }

  /** Resolves after `ms` on the node's clock (0: after the requests queued now have run). */
  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.#clock.setTimer(Math.max(0, ms), resolve));
  }

  /** Waits until `done` keys since `startedMs` are within `perSecond`; yields at least once. */
  #paceTo(startedMs: number, done: number, perSecond: number): Promise<void> {
    return this.#pause(startedMs + (done / perSecond) * 1000 - this.#clock.nowMs());
  }

  /** The main thread abandoned stream `streamId` (a node went down): stop sending its chunks. */
  abortStream(streamId: number): void {
    this.#abortedStreams.add(streamId);
  }

  #onStreamAck(message: Message): void {
    const waiting = this.#streamAcks.get(message.chunk as number);
    if (!waiting) return;
    this.#streamAcks.delete(message.chunk as number);
    this.#clock.clearTimer(waiting.timer);
    if (message.ok === true) waiting.resolve(message.keysNew as number);
    else waiting.reject(new RingChangeError(`stream failed: chunk ${String(message.chunk)} refused: ${String(message.error)}`));
  }

  /** Merges a streamed chunk into the store as one atomic batch, then acknowledges it. */
  async #onStreamChunk(from: number, message: Message): Promise<void> {
    const entries = message.entries as StreamEntry[];
    let keysNew = 0;
    let error: string | undefined;
    try {
      if (this.#store.writeWouldWait) await this.#store.whenWritable();
      const operations: WriteOperation[] = [];
      for (const entry of entries) {
        const local = this.#store.get(entry.key);
        if (local.length === 0) keysNew++;
        const applied = applyReplicated({ key: entry.key, localVersions: local, incoming: entry.versions, limits: streamSiblingLimits });
        if (!applied.ok) throw new RingChangeError(`key would hold ${applied.error.siblings} versions`);
        operations.push({ key: entry.key, kind: "put", versions: applied.versions });
      }
      if (operations.length > 0) await this.#store.write(operations);
      this.#streamed.keysReceived += entries.length;
      this.#streamed.keysNew += keysNew;
    } catch (caught) {
      error = caught instanceof Error ? caught.message : String(caught);
    }
    this.#transport.send(from, {
      type: MessageType.streamAck,
      streamId: message.streamId,
      chunk: message.chunk,
      ok: error === undefined,
      keysNew,
      ...(error === undefined ? {} : { error }),
    });
  }

  /** Stops sessions' timers. The caller closes the store and the transport. */
  stop(): void {
    this.#stopped = true;
    for (const { timer } of this.#sessions.values()) this.#clock.clearTimer(timer);
    this.#sessions.clear();
    for (const waiting of this.#streamAcks.values()) {
      this.#clock.clearTimer(waiting.timer);
      waiting.reject(new RingChangeError("stream failed: node stopped"));
    }
    this.#streamAcks.clear();
  }
}
