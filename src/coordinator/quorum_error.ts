/**
 * The operating error of a request that could not reach its quorum: fewer than `required`
 * replicas acknowledged before the coordinator gave up (too many refusals, or the deadline).
 * Sessions report it as a plain, structured-cloneable object (`QuorumFailure`) inside a respond
 * effect; the edge that answers the caller turns it into a QuorumError with `toQuorumError`.
 */
import { QuorumError, type Outcome } from "../util/errors.ts";

export { QuorumError };

/** What a session puts in a failed respond effect. Plain data: it crosses MessagePorts as is. */
export interface QuorumFailure {
  readonly code: "LOOM_QUORUM";
  /** Replicas that acknowledged (a write) or answered (a read) before the session gave up. */
  readonly acknowledged: number;
  /** W for a write, R for a read. */
  readonly required: number;
  /** With pw (pr): the answers that came from primaries, and how many were required. */
  readonly primaries?: { readonly acknowledged: number; readonly required: number };
}

export type QuorumAction = "put" | "delete" | "get";

/**
 * The error for a failure a session reported; `replicas` is the length of its preference list.
 * A session fails only after it asked replicas, so a write's outcome is "unknown" unless given.
 */
export function toQuorumError(action: QuorumAction, failure: QuorumFailure, replicas: number, outcome: Outcome = "unknown"): QuorumError {
  const primaries = failure.primaries;
  const detail =
    primaries && primaries.acknowledged < primaries.required
      ? `${primaries.acknowledged} of them from primaries, ${primaries.required} required from primaries`
      : undefined;
  return new QuorumError({ action, acknowledged: failure.acknowledged, required: failure.required, replicas, outcome, ...(detail ? { detail } : {}) });
}
