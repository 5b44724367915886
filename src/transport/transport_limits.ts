/**
 * Bounds of the data-plane transport. They belong in src/util/limits.ts (one limits module);
 * kept here until that shared file can take them. Relationships are asserted at load.
 */
import { assert } from "../util/assert.ts";
import { limits } from "../util/limits.ts";

export const transportLimits = {
  /**
   * Messages one destination's outbox holds in one turn of the event loop; sends past it are
   * dropped and counted (`messagesDroppedOutboxFull`). One postMessage carries at most this many.
   */
  outboxMessagesMax: 16_384,
  /** Messages the simulated network holds in flight (all pairs together) before it drops sends. */
  simInFlightMessagesMax: 1_000_000,
  /** Largest per-message delay the simulated network accepts, in ms (one virtual hour). */
  simDelayMsMax: 3_600_000,
} as const;

assert(transportLimits.outboxMessagesMax >= 1024, "a turn can carry a 1000-request batch to one peer");
assert(
  transportLimits.simInFlightMessagesMax >= transportLimits.outboxMessagesMax * limits.nodesMax,
  "the simulator can hold one full outbox per node",
);
