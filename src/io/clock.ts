/**
 * The time edge. Code that waits (group-commit windows, timeouts, gossip periods) takes a Clock,
 * so the same code runs on real time (real_clock.ts) and on virtual time (sim_clock.ts), where a
 * simulator advances time explicitly and timers fire deterministically.
 */

/** Opaque token from `setTimer`; meaningful only to the clock that issued it. */
export interface TimerHandle {
  /** For debugging only: unique per clock, in issue order. */
  readonly timerId: number;
}

export interface TimerOptions {
  /** Keep the process alive while the timer is pending. @default false */
  readonly keepAlive?: boolean;
}

export interface Clock {
  /** Monotonic milliseconds from an arbitrary origin (not wall-clock time). */
  nowMs(): number;
  /**
   * Wall-clock milliseconds since the Unix epoch, for what people read (version timestamps that
   * order siblings for display and pruning). Never for deadlines: it may jump.
   */
  wallMs(): number;
  /**
   * Calls `callback` once, no earlier than `delayMs` from now. REQUIRES: `delayMs` finite, >= 0.
   * A pending timer does not keep the process alive unless `options.keepAlive` is set (use it for
   * work owed to a caller, such as a group commit that acknowledges writes).
   */
  setTimer(delayMs: number, callback: () => void, options?: TimerOptions): TimerHandle;
  /** Cancels a pending timer; no effect if it already fired, was cleared, or is foreign. */
  clearTimer(handle: TimerHandle): void;
}
