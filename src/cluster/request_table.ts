/**
 * The client requests the main thread has handed to coordinating nodes and not yet seen answered.
 * Each waits for its coordinator's response; a guard timer (on the injected Clock) fails it if the
 * coordinator never answers (its thread died or hangs), and `abandonCoordinatedBy` fails at once
 * those of a node known to be down. `drain(mark)` waits until every request numbered below
 * `mark` has finished (ring changes and close() use it). Pure apart from the Clock.
 */
import type { Clock, TimerHandle } from "../io/clock.ts";
import { BusyError, QuorumError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";

export type RequestAction = "put" | "delete" | "get";

interface Pending {
  readonly action: RequestAction;
  /** Replicas the request addresses (N). */
  readonly replicas: number;
  /** W or R: what a guard's error reports. */
  readonly required: number;
  readonly coordinator: number;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly timer: TimerHandle;
}

export class RequestTable {
  readonly #clock: Clock;
  readonly #pending = new Map<number, Pending>();
  readonly #drainWaiters = new Set<() => void>();
  #nextRequestId = 1;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#pending.size;
  }

  /** The id the next request will get: `drain(nextId)` waits for every request issued before. */
  get nextId(): number {
    return this.#nextRequestId;
  }

  /**
   * Registers a request sent to `coordinator` and returns its id and the promise of its answer.
   * Refuses with BusyError ("not-applied") past limits.requestsInFlightMax. The guard fires after
   * `guardMs` with QuorumError ("unknown" for a write: the replicas it reached may hold it).
   */
  open(request: { action: RequestAction; replicas: number; required: number; coordinator: number; guardMs: number }): { id: number; answer: Promise<unknown> } {
    if (this.#pending.size >= limits.requestsInFlightMax) {
      throw new BusyError(`${request.action} failed: ${this.#pending.size} requests in flight, limit is ${limits.requestsInFlightMax}`);
    }
    const id = this.#nextRequestId++;
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = this.#clock.setTimer(
        request.guardMs,
        () => this.#abandon(id, `coordinating node ${request.coordinator} did not answer within ${request.guardMs} ms`),
        { keepAlive: true },
      );
      this.#pending.set(id, { ...request, resolve, reject, timer });
    });
    return { id, answer };
  }

  /** The coordinator answered: settles the request (a later answer for it is ignored). */
  settle(id: number, outcome: { ok: true; value: unknown } | { ok: false; error: unknown }): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#finish(id, pending);
    if (outcome.ok) pending.resolve(outcome.value);
    else pending.reject(outcome.error);
  }

  /** Fails at once every request `node` coordinates: it is down and will not answer. */
  abandonCoordinatedBy(node: number, detail: string): void {
    for (const [id, pending] of [...this.#pending]) if (pending.coordinator === node) this.#abandon(id, detail);
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

  #abandon(id: number, detail: string): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#finish(id, pending);
    const { action, required, replicas } = pending;
    pending.reject(new QuorumError({ action, acknowledged: 0, required, replicas, outcome: action === "get" ? "not-applied" : "unknown", detail }));
  }

  #finish(id: number, pending: Pending): void {
    this.#pending.delete(id);
    this.#clock.clearTimer(pending.timer);
    for (const wake of [...this.#drainWaiters]) wake();
  }
}
