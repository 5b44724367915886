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
  type GetSession,
  type ReadReply,
} from "../coordinator/get_session.ts";
import { createPutSession, onReply as onPutReply, onTick as onPutTick, type PutEffect, type PutSession } from "../coordinator/put_session.ts";
import { applyReplicated } from "../coordinator/replica_apply.ts";
import type { Store } from "../storage/store.ts";
import type { Version } from "../storage/version_set_format.ts";
import { MessageType, type Message } from "../transport/message_types.ts";
import type { Transport } from "../transport/transport.ts";
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

type Session = { readonly kind: "put"; readonly session: PutSession } | { readonly kind: "get"; readonly session: GetSession };

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

export interface NodeStats {
  readonly nodeId: number;
  readonly requests: { readonly put: number; readonly get: number; readonly failed: number };
  readonly latencyMs: { readonly put: ReturnType<LatencySamples["summary"]>; readonly get: ReturnType<LatencySamples["summary"]> };
  readonly siblingWarnings: number;
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
  readonly #sessions = new Map<number, { session: Session; timer: TimerHandle; startedMs: number }>();
  readonly #latency = { put: new LatencySamples(), get: new LatencySamples() };
  readonly #requests = { put: 0, get: 0, failed: 0 };
  /** Lowest counter a new dot may take: grows with every write this node coordinates. */
  #counterFloor: number;
  siblingWarnings = 0;

  constructor(options: { nodeId: number; store: Store; transport: Transport; clock: Clock }) {
    this.nodeId = options.nodeId;
    this.#store = options.store;
    this.#transport = options.transport;
    this.#clock = options.clock;
    this.#counterFloor = options.store.stats().sequence + 1;
    this.#transport.onMessage((from, message) => this.#receive(from, message));
  }

  #receive(from: number, message: Message): void {
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
        context: request.context === "" ? emptyContext : decodeContext(request.context),
        preferenceList: request.preferenceList,
        self: this.nodeId,
        w: request.w,
        timeoutMs: request.timeoutMs,
        nowMs: this.#now(),
        localVersions: this.#store.get(request.key),
        pruneThreshold: request.pruneThreshold,
        timestampMs: Date.now(),
        counterFloor: this.#counterFloor++,
      });
    } catch (error) {
      return this.#refuse(request.requestId, error);
    }
    this.#track(request.requestId, { kind: "put", session: created.session }, request.timeoutMs);
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
      });
    } catch (error) {
      return this.#refuse(request.requestId, error);
    }
    this.#track(request.requestId, { kind: "get", session: created.session }, request.timeoutMs);
    this.#runGetEffects(created.session, created.effects);
  }

  /** Keeps a session until its deadline (read repair may continue after the response). */
  #track(requestId: number, session: Session, timeoutMs: number): void {
    const timer = this.#clock.setTimer(timeoutMs, () => {
      const tracked = this.#sessions.get(requestId);
      if (!tracked) return;
      if (tracked.session.kind === "put") this.#runPutEffects(tracked.session.session, onPutTick(tracked.session.session, this.#now()));
      else this.#runGetEffects(tracked.session.session, onGetTick(tracked.session.session, this.#now()));
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
  }

  #runPutEffects(session: PutSession, effects: readonly PutEffect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case "store-local":
          this.#mergeLocal(effect.key, effect.versions).then(
            (ok) => this.#onPutReply(session.requestId, this.nodeId, ok),
            () => this.#onPutReply(session.requestId, this.nodeId, false),
          );
          break;
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
          this.#onGetReply(session.requestId, this.nodeId, { ok: true, versions: this.#store.get(effect.key) });
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

  #respond(kind: "put" | "get", requestId: number, result: { readonly ok: boolean }): void {
    const tracked = this.#sessions.get(requestId);
    if (tracked) this.#latency[kind].add(this.#clock.nowMs() - tracked.startedMs);
    if (!result.ok) this.#requests.failed++;
    this.#transport.send(MAIN_PEER, { type: MessageType.response, requestId, result });
  }

  stats(): NodeStats {
    const store = this.#store.stats();
    return {
      nodeId: this.nodeId,
      requests: { ...this.#requests },
      latencyMs: { put: this.#latency.put.summary(), get: this.#latency.get.summary() },
      siblingWarnings: this.siblingWarnings,
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

  #refuse(requestId: number, error: unknown): void {
    const { name, message, code } = error as { name?: string; message?: string; code?: string };
    this.#transport.send(MAIN_PEER, {
      type: MessageType.response,
      requestId,
      result: { ok: false, error: { code: code ?? "LOOM_INVALID_ARGUMENT", name: name ?? "Error", message: message ?? String(error) } },
    });
  }

  // ---- replica side --------------------------------------------------------------------------

  /**
   * Merges `incoming` into the local record (dominance rule, sibling limits) and resolves once the
   * result is durable under the store's fsync policy: true when written, false when refused.
   */
  async #mergeLocal(key: Uint8Array, incoming: readonly Version[]): Promise<boolean> {
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

  #read(from: number, message: Message): void {
    let reply: ReadReply;
    try {
      reply = { ok: true, versions: this.#store.get(message.key as Uint8Array) };
    } catch {
      reply = { ok: false };
    }
    this.#transport.send(from, { type: MessageType.readReply, requestId: message.requestId, reply });
  }

  /** Stops sessions' timers. The caller closes the store and the transport. */
  stop(): void {
    for (const { timer } of this.#sessions.values()) this.#clock.clearTimer(timer);
    this.#sessions.clear();
  }
}
