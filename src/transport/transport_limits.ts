/**
 * Bounds of the data-plane transport. The first three are a view of src/util/limits.ts, where they
 * are defined and asserted; the frame bounds are the binary wire frame's own (frame_format.ts),
 * asserted here against the record limits they must carry.
 */
import { assert } from "../util/assert.ts";
import { limits } from "../util/limits.ts";

export const transportLimits = {
  outboxMessagesMax: limits.outboxMessagesMax,
  simInFlightMessagesMax: limits.simInFlightMessagesMax,
  simDelayMsMax: limits.simDelayMsMax,
  /**
   * A frame is cut after the message that brings it to this size; the rest of the turn's batch
   * goes in further frames (further postMessages, in order). Bounds one transfer's size.
   */
  frameBytesTarget: 256 * 1024,
  /** Largest encoded message; a bigger one travels by structured clone. */
  frameMessageBytesMax: limits.recordPayloadBytesMax + limits.keyBytesMax + 64 * 1024,
  /** Largest frame a receiver accepts: a frame under the target plus one largest message. */
  frameBytesMax: 16 * 1024 * 1024,
  /** Largest string field (a causal context) a frame carries. */
  frameStringBytesMax: 64 * 1024,
} as const;

assert(
  transportLimits.frameBytesTarget + transportLimits.frameMessageBytesMax <= transportLimits.frameBytesMax,
  "a frame under the target plus one largest message fits a frame",
);
assert(
  limits.recordPayloadBytesMax + limits.keyBytesMax < transportLimits.frameMessageBytesMax,
  "a message carrying a whole record and its key can be encoded",
);
assert(limits.valueBytesMax + limits.keyBytesMax + transportLimits.frameStringBytesMax < transportLimits.frameMessageBytesMax, "a largest put request can be encoded");
