/**
 * Virtual time for the simulator. Time moves only when the owner calls `advance`, `runNext` or
 * `runUntilIdle`; timers fire in deadline order, and timers with equal deadlines fire in the order
 * they were set. No host timer or host clock is read, so a run replays exactly.
 *
 * A callback runs with `nowMs()` equal to its deadline. A callback that throws propagates out of
 * the call that ran it; the timer is already removed and time stays at its deadline.
 */
import { describe, LoomRangeError } from "../util/errors.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import { MinHeap } from "../util/min_heap.ts";

interface SimTimer {
  readonly handle: TimerHandle;
  readonly deadlineMs: number;
  readonly callback: () => void;
}

export interface SimClockOptions {
  /** Initial virtual time. @default 0 */
  startMs?: number;
  /** Wall-clock time at virtual time 0, for `wallMs()`. @default 1_700_000_000_000 (November 2023) */
  epochWallMs?: number;
}

export interface RunUntilIdleOptions {
  /**
   * Most timers to run before giving up: a guard against callbacks that reschedule forever.
   * @default 1_000_000
   */
  timerCountMax?: number;
}

function earlier(a: SimTimer, b: SimTimer): boolean {
  if (a.deadlineMs !== b.deadlineMs) return a.deadlineMs < b.deadlineMs;
  return a.handle.timerId < b.handle.timerId;
}

export class SimClock implements Clock {
  #nowMs: number;
  readonly #epochWallMs: number;
  #nextTimerId = 1;
  /** Pending timers; cleared ones leave the map at once and the heap lazily. */
  readonly #pending = new Map<TimerHandle, SimTimer>();
  /** Binary min-heap by (deadline, set order). */
  #heap = new MinHeap<SimTimer>(earlier);

  constructor(options: SimClockOptions = {}) {
    const startMs = options.startMs ?? 0;
    if (!Number.isFinite(startMs)) {
      throw new LoomRangeError(`sim clock failed: startMs is ${describe(startMs)}, must be finite`);
    }
    this.#nowMs = startMs;
    this.#epochWallMs = options.epochWallMs ?? 1_700_000_000_000;
  }

  nowMs(): number {
    return this.#nowMs;
  }

  /** Virtual wall time: the epoch plus virtual time, in whole ms. */
  wallMs(): number {
    return this.#epochWallMs + Math.floor(this.#nowMs);
  }

  setTimer(delayMs: number, callback: () => void): TimerHandle {
    if (!(Number.isFinite(delayMs) && delayMs >= 0)) {
      throw new LoomRangeError(`set timer failed: delayMs is ${describe(delayMs)}, must be finite and >= 0`);
    }
    const timer: SimTimer = { handle: { timerId: this.#nextTimerId++ }, deadlineMs: this.#nowMs + delayMs, callback };
    this.#pending.set(timer.handle, timer);
    this.#heap.push(timer);
    return timer.handle;
  }

  clearTimer(handle: TimerHandle): void {
    if (!this.#pending.delete(handle)) return;
    if (this.#heap.size > 64 && this.#heap.size > 2 * this.#pending.size) this.#rebuildHeap();
  }

  /** Timers set and not yet fired or cleared. */
  pendingTimers(): number {
    return this.#pending.size;
  }

  /** Deadline of the earliest pending timer, or undefined if none. */
  nextDeadlineMs(): number | undefined {
    return this.#peek()?.deadlineMs;
  }

  /**
   * Moves time forward by `ms`, running every timer due up to the new time (including timers that
   * those callbacks set within the window), then leaves time at exactly now + ms.
   * Returns the number of timers run. REQUIRES: `ms` finite and >= 0.
   */
  advance(ms: number): number {
    if (!(Number.isFinite(ms) && ms >= 0)) {
      throw new LoomRangeError(`advance failed: ms is ${describe(ms)}, must be finite and >= 0`);
    }
    const targetMs = this.#nowMs + ms;
    let count = 0;
    for (let timer = this.#peek(); timer !== undefined && timer.deadlineMs <= targetMs; timer = this.#peek()) {
      this.#fire(timer);
      count += 1;
    }
    this.#nowMs = targetMs;
    return count;
  }

  /** Jumps to the earliest pending timer and runs it; false if no timer is pending. */
  runNext(): boolean {
    const timer = this.#peek();
    if (timer === undefined) return false;
    this.#fire(timer);
    return true;
  }

  /**
   * Runs timers in order until none is pending; time ends at the last deadline run. Returns the
   * number run. Throws LoomRangeError if more than `timerCountMax` would run.
   */
  runUntilIdle(options: RunUntilIdleOptions = {}): number {
    const timerCountMax = options.timerCountMax ?? 1_000_000;
    let count = 0;
    while (this.#pending.size > 0) {
      if (count >= timerCountMax) {
        throw new LoomRangeError(
          `run until idle failed: ${count} timers ran and ${this.#pending.size} are still pending, limit is ${timerCountMax}`,
        );
      }
      this.runNext();
      count += 1;
    }
    return count;
  }

  #fire(timer: SimTimer): void {
    this.#heap.pop();
    this.#pending.delete(timer.handle);
    this.#nowMs = Math.max(this.#nowMs, timer.deadlineMs);
    timer.callback();
  }

  /** The earliest pending timer (at the heap root), dropping cleared ones on the way. */
  #peek(): SimTimer | undefined {
    for (;;) {
      const root = this.#heap.peek();
      if (root === undefined || this.#pending.get(root.handle) === root) return root;
      this.#heap.pop();
    }
  }

  #rebuildHeap(): void {
    this.#heap.retain((timer) => this.#pending.get(timer.handle) === timer);
  }


}
