/**
 * The client requests the main thread has handed to coordinating nodes and not yet seen answered.
 * Each request has a list of candidate coordinators (its key's live primaries, then stand-ins) and
 * is sent to the first. What happens next, as Cassandra's drivers and Riak's clients do for
 * idempotent requests:
 *
 * - a coordinator refuses it without having done anything (`retry` on its answer: its store
 *   failed, it has no actor, it is closing): any request goes on to the next live candidate;
 * - a read's coordinator exits, or does not answer within the attempt deadline (a quarter of the
 *   request's timeout): the read goes on to the next live candidate with what is left of its
 *   deadline, and the first answer of any attempt wins;
 * - a write's coordinator exits or stalls: the write fails as "unknown" (the replicas it reached
 *   may hold it) and is never sent again silently;
 * - nothing answers: the guard fails the request after twice its timeout plus a second.
 *
 * Every deadline lives in one DeadlineQueue (one typed-array heap under one Clock timer): no timer
 * and no object per request or attempt.
 * `drain(mark)` waits until every request numbered below `mark` has finished (ring changes and
 * close() use it). Pure apart from the Clock.
 */
import type { Clock } from "../io/clock.ts";
import { DeadlineQueue } from "../util/deadline_queue.ts";
import { BusyError, QuorumError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";

export type RequestAction = "put" | "delete" | "get";

/** A read's attempt deadline: this share of its timeout. */
export const READ_ATTEMPT_SHARE = 0.25;

export interface OpenRequest {
  readonly action: RequestAction;
  /** Replicas the request addresses (N). */
  readonly replicas: number;
  /** W or R: what a guard's error reports. */
  readonly required: number;
  /** Coordinators in the order they are tried; the first is sent the request at once. */
  readonly candidates: readonly number[];
  readonly timeoutMs: number;
  /** Sends the request to `coordinator` with `timeoutMs` left. */
  readonly send: (coordinator: number, requestId: number, timeoutMs: number) => void;
  /** Whether a candidate may be tried now (it is not known to be down). */
  readonly available: (node: number) => boolean;
}

interface Pending {
  readonly request: OpenRequest;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: unknown) => void;
  /** The candidate tried last (index into request.candidates). */
  tried: number;
  /** Coordinators sent the request that may still answer (one, but for a read tried again). */
  readonly outstanding: number[];
  /** When the request's own deadline passes (a retry gets what is left of it). */
  readonly deadlineMs: number;
  readonly guardMs: number;
  readonly guardAtMs: number;
  /** A read's next attempt deadline (Infinity: none). */
  attemptAtMs: number;
  /** The time this request's entry in the heap stands for. */
  dueMs: number;
}

export class RequestTable {
  readonly #clock: Clock;
  readonly #pending = new Map<number, Pending>();
  readonly #drainWaiters = new Set<() => void>();
  /** Every request's next deadline under one timer; an entry is current while the request's `dueMs` matches. */
  readonly #deadlines: DeadlineQueue;
  #nextRequestId = 1;
  /** Attempts sent again to another coordinator since the start. */
  retries = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
    // keepAlive: a caller awaits each request, so its deadline is owed to someone.
    this.#deadlines = new DeadlineQueue({
      clock,
      dueOf: (id) => this.#pending.get(id)?.dueMs,
      onDue: (id, nowMs) => this.#onDue(id, nowMs),
      keepAlive: true,
    });
  }

  get size(): number {
    return this.#pending.size;
  }

  /** The id the next request will get: `drain(nextId)` waits for every request issued before. */
  get nextId(): number {
    return this.#nextRequestId;
  }

  /**
   * Registers a request and sends it to its first candidate; returns the promise of its answer.
   * Refuses with BusyError ("not-applied") past limits.requestsInFlightMax.
   */
  open(request: OpenRequest): Promise<unknown> {
    if (this.#pending.size >= limits.requestsInFlightMax) {
      throw new BusyError(`${request.action} failed: ${this.#pending.size} requests in flight, limit is ${limits.requestsInFlightMax}`);
    }
    const id = this.#nextRequestId++;
    const nowMs = this.#clock.nowMs();
    const guardMs = request.timeoutMs * 2 + 1000;
    let pending!: Pending;
    const answer = new Promise<unknown>((resolve, reject) => {
      pending = {
        request,
        resolve,
        reject,
        tried: 0,
        outstanding: [request.candidates[0]!],
        deadlineMs: nowMs + request.timeoutMs,
        guardMs,
        guardAtMs: nowMs + guardMs,
        attemptAtMs: request.action === "get" && request.candidates.length > 1 ? nowMs + Math.max(1, Math.floor(request.timeoutMs * READ_ATTEMPT_SHARE)) : Number.POSITIVE_INFINITY,
        dueMs: 0,
      };
    });
    this.#pending.set(id, pending);
    this.#schedule(id, pending);
    request.send(request.candidates[0]!, id, request.timeoutMs);
    return answer;
  }

  /**
   * Coordinator `from` answered. A success settles the request; a refusal marked `retry` sends it
   * on to the next live candidate; any other failure settles it, unless a read still has another
   * attempt out (the newest attempt decides).
   */
  settle(id: number, from: number, outcome: { ok: true; value: unknown } | { ok: false; error: unknown; retry?: boolean }): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    removeFrom(pending.outstanding, from);
    if (outcome.ok) {
      this.#finish(id, pending);
      pending.resolve(outcome.value);
      return;
    }
    if (outcome.retry && this.#retry(id, pending)) return;
    if (pending.outstanding.length > 0 && pending.request.action === "get") return;
    this.#finish(id, pending);
    pending.reject(outcome.error);
  }

  /**
   * `node` is down and will not answer: its reads go on to their next candidate; everything else
   * it coordinates fails at once ("unknown" for a write: the replicas it reached may hold it).
   */
  abandonCoordinatedBy(node: number, detail: string): void {
    for (const [id, pending] of [...this.#pending]) {
      if (!removeFrom(pending.outstanding, node)) continue;
      if (pending.request.action === "get" && this.#retry(id, pending)) continue;
      if (pending.outstanding.length > 0 && pending.request.action === "get") continue;
      this.#abandon(id, pending, detail);
    }
  }

  /** Waits until every request numbered below `mark` has finished (each does by its guard). */
  async drain(mark: number): Promise<void> {
    const waiting = () => {
      for (const id of this.#pending.keys()) if (id < mark) return true;
      return false;
    };
    while (waiting()) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#drainWaiters.delete(wake);
          resolve();
        };
        this.#drainWaiters.add(wake);
      });
    }
  }

  /** Sends the request to its next available candidate, if one is left and so is time. */
  #retry(id: number, pending: Pending): boolean {
    const remainingMs = Math.floor(pending.deadlineMs - this.#clock.nowMs());
    const { candidates } = pending.request;
    if (remainingMs < 1) {
      pending.attemptAtMs = Number.POSITIVE_INFINITY;
      this.#schedule(id, pending);
      return false;
    }
    for (let next = pending.tried + 1; next < candidates.length; next++) {
      const candidate = candidates[next]!;
      if (pending.outstanding.includes(candidate) || !pending.request.available(candidate)) continue;
      pending.tried = next;
      pending.outstanding.push(candidate);
      const isGet = pending.request.action === "get";
      pending.attemptAtMs = isGet && next + 1 < candidates.length ? this.#clock.nowMs() + Math.max(1, Math.floor(pending.request.timeoutMs * READ_ATTEMPT_SHARE)) : Number.POSITIVE_INFINITY;
      this.#schedule(id, pending);
      this.retries++;
      pending.request.send(candidate, id, remainingMs);
      return true;
    }
    pending.tried = candidates.length;
    pending.attemptAtMs = Number.POSITIVE_INFINITY;
    this.#schedule(id, pending);
    return false;
  }

  #abandon(id: number, pending: Pending, detail: string): void {
    this.#finish(id, pending);
    const { action, required, replicas } = pending.request;
    pending.reject(new QuorumError({ action, acknowledged: 0, required, replicas, outcome: action === "get" ? "not-applied" : "unknown", detail }));
  }

  #finish(id: number, pending: Pending): void {
    this.#pending.delete(id);
    pending.dueMs = Number.NaN; // its queue entry is stale from now on
    // The timer keeps the process alive: once nothing is in flight it must not stay armed.
    if (this.#pending.size === 0) this.#deadlines.clear();
    if (this.#drainWaiters.size > 0) for (const wake of [...this.#drainWaiters]) wake();
  }

  // ---- deadlines: one queue, one timer ---------------------------------------------------------

  /** Puts the request's next due time in the queue (the entry it had before goes stale). */
  #schedule(id: number, pending: Pending): void {
    const dueMs = Math.min(pending.attemptAtMs, pending.guardAtMs);
    if (dueMs === pending.dueMs) return;
    pending.dueMs = dueMs;
    this.#deadlines.schedule(id, dueMs);
  }

  /** A request's deadline passed: its guard fails it, or a read's attempt deadline tries the next candidate. */
  #onDue(id: number, nowMs: number): void {
    const pending = this.#pending.get(id)!;
    pending.dueMs = Number.NaN;
    if (nowMs >= pending.guardAtMs) {
      const coordinator = pending.request.candidates[Math.min(pending.tried, pending.request.candidates.length - 1)]!;
      this.#abandon(id, pending, `coordinating node ${coordinator} did not answer within ${pending.guardMs} ms`);
      return;
    }
    // A read's attempt deadline: the next candidate gets it, the earlier attempts may still win.
    if (!this.#retry(id, pending)) this.#schedule(id, pending);
  }
}

/** Removes `node` from `nodes`; says whether it was there. */
function removeFrom(nodes: number[], node: number): boolean {
  const index = nodes.indexOf(node);
  if (index === -1) return false;
  nodes.splice(index, 1);
  return true;
}
