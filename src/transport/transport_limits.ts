/** Bounds of the data-plane transport: a view of src/util/limits.ts, where they are defined and asserted. */
import { limits } from "../util/limits.ts";

export const transportLimits = {
  outboxMessagesMax: limits.outboxMessagesMax,
  simInFlightMessagesMax: limits.simInFlightMessagesMax,
  simDelayMsMax: limits.simDelayMsMax,
} as const;
