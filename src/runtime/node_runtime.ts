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

export class NodeRuntime {
  readonly nodeId: number;
  readonly #store: Store;
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #sessions = new Map<number, { session: Session; timer: TimerHandle }>();
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
      this.#sessions.delete(requestId);
      if (tracked.session.kind === "put") this.#runPutEffects(tracked.session.session, onPutTick(tracked.session.session, this.#now()));
      else this.#runGetEffects(tracked.session.session, onGetTick(tracked.session.session, this.#now()));
    });
    this.#sessions.set(requestId, { session, timer });
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
          this.#transport.send(MAIN_PEER, { type: MessageType.response, requestId: effect.requestId, result: effect.result });
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
          this.#transport.send(MAIN_PEER, { type: MessageType.response, requestId: effect.requestId, result: effect.result });
          break;
      }
    }
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
