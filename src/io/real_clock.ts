/**
 * Clock over the host: `performance.now()` and node:timers (Node and Deno). Timers are unref'd (a
 * pending gossip timer never keeps a process alive) unless set with `keepAlive`.
 */
import { clearTimeout, setTimeout } from "node:timers";
import { describe, LoomRangeError } from "../util/errors.ts";
import type { Clock, TimerHandle, TimerOptions } from "./clock.ts";

export class RealClock implements Clock {
  #nextTimerId = 1;
  readonly #timers = new Map<TimerHandle, ReturnType<typeof setTimeout>>();

  nowMs(): number {
    return performance.now();
  }

  wallMs(): number {
    return Date.now();
  }

  setTimer(delayMs: number, callback: () => void, options: TimerOptions = {}): TimerHandle {
    if (!(Number.isFinite(delayMs) && delayMs >= 0)) {
      throw new LoomRangeError(`set timer failed: delayMs is ${describe(delayMs)}, must be finite and >= 0`);
    }
    const handle: TimerHandle = { timerId: this.#nextTimerId++ };
    this.#arm(handle, performance.now() + delayMs, delayMs, callback, options.keepAlive === true);
    return handle;
  }

  /**
   * node:timers run on the event loop's cached, millisecond time and can fire a fraction of a
   * millisecond before performance.now() reaches the due time; such a timer is re-armed for the
   * rest, so that a callback never sees nowMs() short of its deadline.
   */
  #arm(handle: TimerHandle, dueMs: number, delayMs: number, callback: () => void, keepAlive: boolean): void {
    const timeout = setTimeout(() => {
      const earlyMs = dueMs - performance.now();
      if (earlyMs > 0) return this.#arm(handle, dueMs, earlyMs, callback, keepAlive);
      this.#timers.delete(handle);
      callback();
    }, delayMs);
    if (!keepAlive) timeout.unref();
    this.#timers.set(handle, timeout);
  }

  clearTimer(handle: TimerHandle): void {
    const timeout = this.#timers.get(handle);
    if (timeout === undefined) return;
    this.#timers.delete(handle);
    clearTimeout(timeout);
  }

  /** Timers set and not yet fired or cleared. */
  pendingTimers(): number {
    return this.#timers.size;
  }
}
