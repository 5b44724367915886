/**
 * The operating error of a request that could not reach its quorum: fewer than `required`
 * replicas acknowledged before the coordinator gave up (too many refusals, or the deadline).
 * Sessions report it as a plain, structured-cloneable object (`QuorumFailure`) inside a respond
 * effect; the edge that answers the caller turns it into this error with `toQuorumError`.
 */

/** What a session puts in a failed respond effect. Plain data: it crosses MessagePorts as is. */
export interface QuorumFailure {
  readonly code: "LOOM_QUORUM";
  /** Replicas that acknowledged (a write) or answered (a read) before the session gave up. */
  readonly acknowledged: number;
  /** W for a write, R for a read. */
  readonly required: number;
}

export type QuorumAction = "put" | "delete" | "get";

export class QuorumError extends Error {
  override readonly name = "QuorumError";
  readonly code = "LOOM_QUORUM" as const;
  readonly acknowledged: number;
  readonly required: number;

  /** Message: `put failed: 1 of 3 replicas acknowledged, 2 required`. */
  constructor(options: { action: QuorumAction; acknowledged: number; required: number; replicas: number }) {
    const { action, acknowledged, required, replicas } = options;
    super(`${action} failed: ${acknowledged} of ${replicas} replicas acknowledged, ${required} required`);
    this.acknowledged = acknowledged;
    this.required = required;
  }
}

/** The error for a failure a session reported; `replicas` is the length of its preference list. */
export function toQuorumError(action: QuorumAction, failure: QuorumFailure, replicas: number): QuorumError {
  return new QuorumError({ action, acknowledged: failure.acknowledged, required: failure.required, replicas });
}
