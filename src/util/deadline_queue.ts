/**
 * Many deadlines under ONE clock timer: the requests a thread has in flight each have a due time,
 * and a timer per request (an object, a closure and a host timer each, made and cancelled at the
 * rate of requests) costs more than the work it guards. Entries sit in a binary min-heap kept in
 * two typed arrays (due time, id), so an entry allocates nothing and leaves the garbage collector
 * nothing to trace however long it waits (util/min_heap.ts holds objects: right for the simulator's
 * timers and the record merge, not for one entry per request); the one timer is armed for the
 * earliest. Cancelling or moving a deadline does not touch the heap: the owner keeps each id's
 * current due time and `dueOf` reports it, so an entry whose time no longer matches is stale and
 * skipped when it comes out. Stale entries stay until their time comes or `clear()`: at most the
 * request rate times the timeout.
 *
 * Pure apart from the injected Clock (real or virtual), so the same code runs in the worker
 * runtime and in the simulator. Thread: its owner's.
 */
import type { Clock, TimerHandle } from "../io/clock.ts";

export interface DeadlineQueueOptions {
  readonly clock: Clock;
  /** The current due time of `id`, or undefined once it has none (finished, cancelled). */
  readonly dueOf: (id: number) => number | undefined;
  /**
   * `id`'s deadline passed (its due time at `nowMs` or before). The owner clears or moves it: the
   * entry is gone from the queue when this runs.
   */
  readonly onDue: (id: number, nowMs: number) => void;
  /** Whether the timer keeps the process alive (work owed to a caller). @default false */
  readonly keepAlive?: boolean;
}

export class DeadlineQueue {
  readonly #clock: Clock;
  readonly #dueOf: (id: number) => number | undefined;
  readonly #onDue: (id: number, nowMs: number) => void;
  readonly #keepAlive: boolean;
  /** The heap: entry i is (#dueTimes[i], #ids[i]); #count entries are in use. */
  #dueTimes = new Float64Array(64);
  #ids = new Float64Array(64);
  #count = 0;
  #timer: TimerHandle | undefined;
  /** When the armed timer fires (Infinity: none armed). */
  #timerAtMs = Number.POSITIVE_INFINITY;
  /** Inside #expire, which arms the timer once at its end. */
  #expiring = false;
  readonly #fire = (): void => this.#expire();

  constructor(options: DeadlineQueueOptions) {
    this.#clock = options.clock;
    this.#dueOf = options.dueOf;
    this.#onDue = options.onDue;
    this.#keepAlive = options.keepAlive === true;
  }

  /** Entries held, stale ones included. */
  get size(): number {
    return this.#count;
  }

  /**
   * `id` is due at `atMs` (the owner's `dueOf(id)` reports `atMs` from now on); an earlier entry
   * of the same id goes stale.
   */
  schedule(id: number, atMs: number): void {
    this.#push(atMs, id);
    if (atMs < this.#timerAtMs && !this.#expiring) this.#arm();
  }

  /** Nothing is owed any more: drops every entry and the timer. */
  clear(): void {
    this.#count = 0;
    this.#disarm();
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAtMs = Number.POSITIVE_INFINITY;
  }

  /** Arms the one timer for the earliest current entry (stale entries at the top are dropped). */
  #arm(): void {
    while (this.#count > 0 && this.#dueOf(this.#ids[0]!) !== this.#dueTimes[0]) this.#pop();
    if (this.#count === 0) return this.#disarm();
    const atMs = this.#dueTimes[0]!;
    if (this.#timer !== undefined && this.#timerAtMs <= atMs) return;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timerAtMs = atMs;
    const delayMs = Math.max(0, atMs - this.#clock.nowMs());
    this.#timer = this.#clock.setTimer(delayMs, this.#fire, this.#keepAlive ? { keepAlive: true } : undefined);
  }

  #expire(): void {
    this.#timer = undefined;
    this.#timerAtMs = Number.POSITIVE_INFINITY;
    const nowMs = this.#clock.nowMs();
    this.#expiring = true;
    try {
      while (this.#count > 0 && this.#dueTimes[0]! <= nowMs) {
        const atMs = this.#dueTimes[0]!;
        const id = this.#ids[0]!;
        this.#pop();
        if (this.#dueOf(id) === atMs) this.#onDue(id, nowMs);
      }
    } finally {
      this.#expiring = false;
      this.#arm();
    }
  }

  // ---- the heap ---------------------------------------------------------------------------------

  #push(atMs: number, id: number): void {
    if (this.#count === this.#dueTimes.length) {
      const dueTimes = new Float64Array(this.#count * 2);
      const ids = new Float64Array(this.#count * 2);
      dueTimes.set(this.#dueTimes);
      ids.set(this.#ids);
      this.#dueTimes = dueTimes;
      this.#ids = ids;
    }
    const dueTimes = this.#dueTimes;
    const ids = this.#ids;
    let index = this.#count++;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (dueTimes[parent]! <= atMs) break;
      dueTimes[index] = dueTimes[parent]!;
      ids[index] = ids[parent]!;
      index = parent;
    }
    dueTimes[index] = atMs;
    ids[index] = id;
  }

  /** Removes the first entry. REQUIRES: #count > 0. */
  #pop(): void {
    const dueTimes = this.#dueTimes;
    const ids = this.#ids;
    const count = --this.#count;
    if (count === 0) return;
    const atMs = dueTimes[count]!;
    const id = ids[count]!;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= count) break;
      const right = left + 1;
      const child = right < count && dueTimes[right]! < dueTimes[left]! ? right : left;
      if (dueTimes[child]! >= atMs) break;
      dueTimes[index] = dueTimes[child]!;
      ids[index] = ids[child]!;
      index = child;
    }
    dueTimes[index] = atMs;
    ids[index] = id;
  }
}
