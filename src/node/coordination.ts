/**
 * A node as coordinator: the requests the main thread hands it. It stamps a write against every
 * copy it holds of the key, drives the pure quorum sessions (src/coordinator/) with their effects
 * (local store, messages to the other replicas, the answer to the main thread), keeps each session
 * until its deadline for read repair, and counts requests and latencies.
 *
 * Thread contract: the thread that owns the node's store. Pure over the injected store, Clock,
 * Transport and signer.
 */
import type { Clock } from "../io/clock.ts";
import {
  createGetSession,
  onReply as onGetReply,
  onTick as onGetTick,
  onWiden as onGetWiden,
  type GetEffect,
  type GetResult,
  type GetSession,
  type ReadReply,
} from "../coordinator/get_session.ts";
import { streamSiblingLimits } from "../coordinator/merge_entries.ts";
import {
  createPutSession,
  onReply as onPutReply,
  onTick as onPutTick,
  type PutEffect,
  type PutResult,
  type PutSession,
} from "../coordinator/put_session.ts";
import { toQuorumError, type QuorumFailure } from "../coordinator/quorum_error.ts";
import { RoundTripEstimate } from "../coordinator/round_trip_estimate.ts";
import { applyReplicated, TooManySiblingsError, type TooManySiblingsFailure } from "../coordinator/replica_apply.ts";
import type { HintStore } from "../handoff/hint_store.ts";
import type { Targets } from "../handoff/stand_ins.ts";
import type { TrackedStore } from "../storage/tracked_store.ts";
import type { Version } from "../storage/version_set_format.ts";
import { MessageType } from "../transport/message_types.ts";
import type { Transport } from "../transport/transport.ts";
import { DeadlineQueue } from "../util/deadline_queue.ts";
import { encodeError } from "../util/error_codec.ts";
import { BusyError, ClosedError, IoError, QuorumError } from "../util/errors.ts";
import type { ContextSigner } from "../version/context_signer.ts";
import { emptyContext } from "../version/dotted_version_vector.ts";
import { decodeContext } from "../version/version_codec.ts";
import { MAIN_PEER, type GetRequest, type PutRequest } from "./node_messages.ts";
import { LatencySamples } from "./node_stats.ts";
import { companionsOf, throughCompanions, type Companions, type HintHolders } from "./hint_companions.ts";
import type { ReplicaSide } from "./replica_side.ts";
import type { StampingActors } from "./stamping_actors.ts";

/** A session with what its error would need to say: the action and the replicas it addressed (N). */
type Session = (
  | { readonly kind: "put"; readonly session: PutSession; readonly action: "put" | "delete" }
  | { readonly kind: "get"; readonly session: GetSession; readonly action: "get" }
) & {
  readonly replicas: number;
  /** Stand-ins of this request: fallback → the primary it holds a hint for. */
  readonly hints: ReadonlyMap<number, number>;
  /** A get's hint holders to read beside each answering node (by the node answering for the primary). */
  readonly companions?: ReadonlyMap<number, Companions>;
};

export interface CoordinationOptions {
  readonly nodeId: number;
  readonly store: TrackedStore;
  readonly hints: HintStore | undefined;
  readonly replica: ReplicaSide;
  readonly actors: StampingActors;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly signer: ContextSigner;
  /** Where a request goes: its replicas and stand-ins (src/handoff/stand_ins.ts). */
  readonly targets: (primaries: readonly number[], fallbacks: readonly number[], strict: boolean) => Targets;
  /** The failure of the node's store or hint store, if one failed (the node then serves nothing). */
  readonly failure: () => Error | undefined;
  /** The nodes holding hints for a target (this one included), and whether each is up. */
  readonly hintHolders: HintHolders;
  /** The replicas a read asks first (the cluster's readFanout setting, read per request). */
  readonly readFanout: () => ReadFanout;
  /** Whether this node's gossip shows `node` up: a read asking only R asks those first. */
  readonly isUp: (node: number) => boolean;
}

/** "quorum": a read asks R replicas, then the rest after a round trip or a refusal; "all": all N. */
export type ReadFanout = "quorum" | "all";

/** A session in flight: its deadline, and before it the time of its speculative retry. */
interface Tracked {
  readonly session: Session;
  /** The due time in the deadline queue: the speculative retry's time until it ran, then the deadline. */
  dueMs: number;
  readonly deadlineMs: number;
  readonly startedMs: number;
}

export class Coordination {
  readonly #nodeId: number;
  readonly #store: TrackedStore;
  readonly #hints: HintStore | undefined;
  readonly #replica: ReplicaSide;
  readonly #actors: StampingActors;
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #signer: ContextSigner;
  readonly #targets: CoordinationOptions["targets"];
  readonly #storeFailure: () => Error | undefined;
  readonly #hintHolders: CoordinationOptions["hintHolders"];
  readonly #readFanout: () => ReadFanout;
  readonly #isUp: (node: number) => boolean;
  readonly #sessions = new Map<number, Tracked>();
  /** Round trips of the reads this node asked of other replicas: when to ask the others too. */
  readonly readRoundTrip = new RoundTripEstimate();
  /** Reads that asked the replicas they had not asked yet (slow or refusing ones). */
  speculativeReads = 0;
  /** Every session's deadline under one timer (a session is current while its `dueMs` matches). */
  readonly #deadlines: DeadlineQueue;
  readonly latency = { put: new LatencySamples(), get: new LatencySamples() };
  readonly #requests = { put: 0, get: 0, failed: 0 };
  siblingWarnings = 0;

  constructor(options: CoordinationOptions) {
    this.#nodeId = options.nodeId;
    this.#store = options.store;
    this.#hints = options.hints;
    this.#replica = options.replica;
    this.#actors = options.actors;
    this.#transport = options.transport;
    this.#clock = options.clock;
    this.#signer = options.signer;
    this.#targets = options.targets;
    this.#storeFailure = options.failure;
    this.#hintHolders = options.hintHolders;
    this.#readFanout = options.readFanout;
    this.#isUp = options.isUp;
    this.#deadlines = new DeadlineQueue({
      clock: options.clock,
      dueOf: (requestId) => this.#sessions.get(requestId)?.dueMs,
      onDue: (requestId) => this.#due(requestId),
    });
  }

  /** Requests coordinated (put counts deletes) and failed. */
  get requests(): { readonly put: number; readonly get: number; readonly failed: number } {
    return { ...this.#requests };
  }

  /** Whole milliseconds, as the sessions take them. */
  #now(): number {
    return Math.floor(this.#clock.nowMs());
  }

  startPut(request: PutRequest): void {
    // A store that failed (a disk fault) lost what this node stamped since: the node must not
    // stamp again, or its next context would cover dots it no longer holds. Nothing was sent.
    const failure = this.#storeFailure();
    if (failure) {
      return this.#refuse(request.requestId, new IoError(`${request.value === null ? "delete" : "put"} failed: node ${this.#nodeId} cannot write: ${failure.message}`, "", { outcome: "not-applied" }));
    }
    // Stamping reads the key's local versions and writes the new set in one synchronous block; a
    // store that would first wait for a flush makes the request wait instead.
    if (this.#store.writeWouldWait) {
      this.#store.whenWritable().then(
        () => this.startPut(request),
        (error: unknown) => this.#refuse(request.requestId, error),
      );
      return;
    }
    const targets = this.#targets(request.preferenceList, request.fallbacks ?? [], request.quorumGroups !== undefined);
    const action = request.value === null ? "delete" : "put";
    if (request.pw && targets.primaries.length < request.pw) return this.#refusePrimaries(request.requestId, action, targets, request.pw);
    const slotFor = targets.hints.get(this.#nodeId);
    // The node's own actor stamps only what its own store keeps; a write into its hints for a down
    // primary is stamped by the fallback actor in use.
    const actor = this.#actors.actorFor(slotFor);
    if (actor === undefined) return this.#refuse(request.requestId, this.#actors.refusal(slotFor, action));
    const slotVersions = this.#replica.slot(slotFor).get(request.key);
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
        self: this.#nodeId,
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
        counterFloor: this.#actors.counterFloor,
      });
      // The counter is durably leased before the version leaves this node (counter_lease.ts).
      this.#actors.cover(created.session.dotCounter);
    } catch (error) {
      return this.#refuse(request.requestId, error);
    }
    this.#actors.stamped(created.session.dotCounter);
    const replicas = request.quorumGroups?.[0]?.length ?? request.preferenceList.length;
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

  startGet(request: GetRequest): void {
    // A store that failed may hold in its memtable what its log lost: it serves no reads.
    const failure = this.#storeFailure();
    if (failure) return this.#refuse(request.requestId, new IoError(`get failed: node ${this.#nodeId} serves no reads: its store failed: ${failure.message}`, "", { outcome: "not-applied" }));
    const targets = this.#targets(request.preferenceList, request.fallbacks ?? [], false);
    if (request.pr && targets.primaries.length < request.pr) return this.#refusePrimaries(request.requestId, "get", targets, request.pr);
    const companions = companionsOf(request.preferenceList, targets, this.#hintHolders);
    const r = Math.min(request.r, targets.list.length);
    // Only a read of primaries with no hints about can ask R of them: a stand-in's or a hint
    // holder's answer completes a primary's, and pr counts primaries among whoever answers.
    const quorumOnly = r < targets.list.length && this.#readFanout() === "quorum" && !request.pr && targets.hints.size === 0 && companions.size === 0;
    let created: { session: GetSession; effects: GetEffect[] };
    try {
      created = createGetSession({
        requestId: request.requestId,
        key: request.key,
        // Asking R of them: the ones this node sees up first, or a read would wait out the
        // speculative retry for a replica it knows is down.
        preferenceList: quorumOnly ? this.#upFirst(targets.list) : targets.list,
        self: this.#nodeId,
        r,
        ...(quorumOnly ? { ask: r } : {}),
        ...(request.pr ? { primaryQuorum: { nodes: targets.primaries, needed: request.pr } } : {}),
        timeoutMs: request.timeoutMs,
        nowMs: this.#now(),
        signer: this.#signer,
      });
    } catch (error) {
      return this.#refuse(request.requestId, error);
    }
    this.#track(
      request.requestId,
      { kind: "get", session: created.session, action: "get", replicas: request.preferenceList.length, hints: targets.hints, companions },
      request.timeoutMs,
      quorumOnly ? this.readRoundTrip.waitMs : undefined,
    );
    for (const group of companions.values()) {
      for (const holder of [...group.waiting]) {
        if (holder === this.#nodeId) this.onGetReply(request.requestId, holder, this.#replica.readLocal(request.key, group.target), group.target);
        else this.#transport.send(holder, { type: MessageType.read, requestId: request.requestId, key: request.key, hintFor: group.target });
      }
    }
    this.#runGetEffects(created.session, created.effects);
  }

  /** `list` with the nodes this node sees up first (itself first of all), each group in list order. */
  #upFirst(list: readonly number[]): readonly number[] {
    let ordered = true;
    for (let index = 1, down = false; index < list.length; index++) {
      const up = this.#isUp(list[index]!);
      if (up && down) ordered = false;
      down ||= !up;
    }
    if (ordered) return list; // the common case: nobody down, or the down ones last already
    const self = list[0]!;
    const rest = list.slice(1);
    return [self, ...rest.filter((node) => this.#isUp(node)), ...rest.filter((node) => !this.#isUp(node))];
  }

  /**
   * Keeps a session until its deadline (read repair may continue after the response); a read that
   * asked only some replicas asks the others at `widenAfterMs` if it has not answered by then.
   */
  #track(requestId: number, session: Session, timeoutMs: number, widenAfterMs?: number): void {
    const startedMs = this.#clock.nowMs();
    const deadlineMs = startedMs + timeoutMs;
    const dueMs = widenAfterMs === undefined ? deadlineMs : Math.min(deadlineMs, startedMs + widenAfterMs);
    this.#sessions.set(requestId, { session, dueMs, deadlineMs, startedMs });
    this.#deadlines.schedule(requestId, dueMs);
    this.#requests[session.kind]++;
  }

  /** A session's due time came: its speculative retry, or its deadline. */
  #due(requestId: number): void {
    const tracked = this.#sessions.get(requestId)!;
    if (tracked.dueMs < tracked.deadlineMs) {
      tracked.dueMs = tracked.deadlineMs;
      this.#deadlines.schedule(requestId, tracked.dueMs);
      if (tracked.session.kind === "get") {
        const effects = onGetWiden(tracked.session.session);
        if (effects.length > 0) this.speculativeReads++;
        this.#runGetEffects(tracked.session.session, effects);
      }
      return;
    }
    this.#expire(requestId, tracked);
  }

  /** A session's deadline passed: it times out what it still waits for, then is forgotten. */
  #expire(requestId: number, tracked: Tracked): void {
    const nowMs = this.#now(); // the clock never fires a timer before its deadline
    if (tracked.session.kind === "put") this.#runPutEffects(tracked.session.session, onPutTick(tracked.session.session, nowMs));
    else this.#runGetEffects(tracked.session.session, onGetTick(tracked.session.session, nowMs));
    this.#sessions.delete(requestId);
    if (this.#sessions.size === 0) this.#deadlines.clear();
  }

  onPutReply(requestId: number, from: number, ok: boolean): void {
    const tracked = this.#sessions.get(requestId);
    if (tracked?.session.kind !== "put") return;
    this.#runPutEffects(tracked.session.session, onPutReply(tracked.session.session, from, ok, this.#now()));
  }

  /** A read's answer; `hintFor` when it read the hints `from` holds for that target. */
  onGetReply(requestId: number, from: number, reply: ReadReply, hintFor?: number): void {
    const tracked = this.#sessions.get(requestId);
    if (tracked?.session.kind !== "get") return;
    // A round trip: an answer from a replica asked at the start (a widened one's time includes the
    // wait, and would ratchet the wait up), and not a refusal (a failed store refuses at once).
    if (reply.ok && from !== this.#nodeId && hintFor === undefined && tracked.session.session.askedFirst(from)) {
      this.readRoundTrip.add(this.#clock.nowMs() - tracked.startedMs);
    }
    const answer = throughCompanions(tracked.session.companions, from, reply, hintFor);
    if (answer === undefined) return;
    this.#runGetEffects(tracked.session.session, onGetReply(tracked.session.session, answer.from, answer.reply, this.#now()));
    // Every replica answered and read repair was sent: nothing more can happen to the session.
    if (tracked.session.session.finished) this.#retire(requestId);
  }

  /** Forgets a session that can take no more input (its deadline entry goes stale). */
  #retire(requestId: number): void {
    if (this.#sessions.delete(requestId) && this.#sessions.size === 0) this.#deadlines.clear();
  }

  /** `slotVersions`: what the written copy held, read in this same synchronous block. */
  #runPutEffects(session: PutSession, effects: readonly PutEffect[], slotVersions?: readonly Version[]): void {
    const hints = this.#sessions.get(session.requestId)?.session.hints;
    for (const effect of effects) {
      switch (effect.kind) {
        case "store-local": {
          // Only createPutSession emits this, and startPut runs it in the same synchronous block
          // as the read the session merged into: unless the store would stall first, the merged
          // set can be written as it is, without reading and merging the key a second time.
          const hintFor = hints?.get(this.#nodeId);
          const stored =
            hintFor === undefined && !this.#store.writeWouldWait
              ? this.#store.put(effect.key, effect.versions, slotVersions).then(() => true)
              : this.#replica.slot(hintFor).merge(effect.key, effect.versions);
          stored.then(
            (ok) => this.onPutReply(session.requestId, this.#nodeId, ok),
            () => this.onPutReply(session.requestId, this.#nodeId, false),
          );
          break;
        }
        case "send": {
          const hintFor = hints?.get(effect.to);
          const { requestId, key, versions } = effect.message;
          this.#transport.send(
            effect.to,
            hintFor === undefined ? { type: MessageType.replicate, requestId, key, versions } : { type: MessageType.replicate, requestId, key, versions, hintFor },
          );
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
          this.onGetReply(session.requestId, this.#nodeId, this.#replica.readLocal(effect.key, hints?.get(this.#nodeId)));
          break;
        case "store-local":
          this.#replica.repair(effect.key, effect.versions, hints?.get(this.#nodeId));
          break;
        case "send": {
          const hintFor = hints?.get(effect.to);
          const message = effect.message;
          if (message.type === "read") {
            const { requestId, key } = message;
            this.#transport.send(effect.to, hintFor === undefined ? { type: MessageType.read, requestId, key } : { type: MessageType.read, requestId, key, hintFor });
          } else {
            const { key, versions } = message;
            this.#transport.send(effect.to, hintFor === undefined ? { type: MessageType.repair, key, versions } : { type: MessageType.repair, key, versions, hintFor });
          }
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
    if (tracked) this.latency[kind].add(this.#clock.nowMs() - tracked.startedMs);
    if (!result.ok) this.#requests.failed++;
    const answer = result.ok ? result : { ok: false, error: encodeError(this.#failure(tracked?.session, result.error)) };
    this.#transport.send(MAIN_PEER, { type: MessageType.response, requestId, node: this.#nodeId, result: answer });
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
   * Refuses, before anything is sent, a request whose pw (pr) this node's view cannot meet: fewer
   * primaries are up in it than the main thread saw. Another coordinator may see more: `retry`.
   */
  #refusePrimaries(requestId: number, action: "put" | "delete" | "get", targets: Targets, needed: number): void {
    const detail = `only ${targets.primaries.length} primar${targets.primaries.length === 1 ? "y is" : "ies are"} up in node ${this.#nodeId}'s view, ${needed} required from primaries; nothing was sent`;
    this.#refuse(requestId, new QuorumError({ action, acknowledged: 0, required: needed, replicas: targets.list.length, outcome: "not-applied", detail }), true);
  }

  /**
   * Answers a request refused before anything was written or sent. A refusal for a reason of this
   * node's own (its store failed or is closing, it has no actor left) says `retry`: the main thread
   * sends the request on to the next coordinator, which may well serve it.
   */
  #refuse(requestId: number, error: unknown, retryable = false): void {
    this.#requests.failed++;
    const retry = retryable || error instanceof IoError || error instanceof BusyError || error instanceof ClosedError;
    this.#transport.send(MAIN_PEER, { type: MessageType.response, requestId, node: this.#nodeId, result: { ok: false, error: encodeError(error), ...(retry ? { retry } : {}) } });
  }

  /** Stops every session's deadline. */
  stop(): void {
    this.#sessions.clear();
    this.#deadlines.clear();
  }
}

