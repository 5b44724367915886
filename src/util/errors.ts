/**
 * Typed operating errors. Every error loomkv raises on purpose carries a stable `code` that
 * callers can switch on, and an `outcome` that says what a failed request may have left behind:
 *
 * - `"not-applied"`: the request changed nothing (refused before any replica was sent a message,
 *   or a read). Retrying cannot duplicate it.
 * - `"unknown"`: the request may have been applied on some replicas (it missed its quorum or its
 *   deadline after replicas were asked). As in Dynamo, such a write may surface in later reads.
 *
 * Messages name the action, then a colon, then the detail
 * (`put failed: key is 70000 bytes, limit is 16384`).
 */

export type ErrorCode =
  | "LOOM_INVALID_ARGUMENT" // wrong type or malformed argument (TypeError)
  | "LOOM_OUT_OF_RANGE" // argument past a documented limit (RangeError)
  | "LOOM_CLOSED" // use after close
  | "LOOM_CORRUPTION" // checksum or format failure in a file
  | "LOOM_IO" // the file system refused an operation
  | "LOOM_BUSY" // a bounded queue is full
  | "LOOM_LOCKED" // another cluster or store (this process or another) has the directory open
  | "LOOM_QUORUM" // fewer than W (or R) replicas answered in time
  | "LOOM_TOO_MANY_SIBLINGS" // a key's sibling count would pass its limit
  | "LOOM_RING_CHANGE"; // a ring change (vnodes, N, membership) could not finish; the old ring stays

/** What a failed request may have left behind (see the module comment). */
export type Outcome = "not-applied" | "unknown";

export interface LoomErrorOptions {
  /** @default "not-applied", except IoError, CorruptionError and QuorumError: "unknown" */
  readonly outcome?: Outcome;
  readonly cause?: unknown;
}

function causeOf(options: LoomErrorOptions | undefined): { cause?: unknown } | undefined {
  return options?.cause === undefined ? undefined : { cause: options.cause };
}

export class LoomTypeError extends TypeError {
  override readonly name = "LoomTypeError";
  readonly code = "LOOM_INVALID_ARGUMENT" as const;
  readonly outcome: Outcome;
  constructor(message: string, options?: LoomErrorOptions) {
    super(message, causeOf(options));
    this.outcome = options?.outcome ?? "not-applied";
  }
}

export class LoomRangeError extends RangeError {
  override readonly name = "LoomRangeError";
  readonly code = "LOOM_OUT_OF_RANGE" as const;
  readonly outcome: Outcome;
  constructor(message: string, options?: LoomErrorOptions) {
    super(message, causeOf(options));
    this.outcome = options?.outcome ?? "not-applied";
  }
}

export class ClosedError extends Error {
  override readonly name = "ClosedError";
  readonly code = "LOOM_CLOSED" as const;
  readonly outcome: Outcome;
  constructor(message: string, options?: LoomErrorOptions) {
    super(message, causeOf(options));
    this.outcome = options?.outcome ?? "not-applied";
  }
}

export class BusyError extends Error {
  override readonly name = "BusyError";
  readonly code = "LOOM_BUSY" as const;
  readonly outcome: Outcome;
  constructor(message: string, options?: LoomErrorOptions) {
    super(message, causeOf(options));
    this.outcome = options?.outcome ?? "not-applied";
  }
}

/** Moving keys for a ring change failed (a node stopped answering); the old ring stays in force. */
export class RingChangeError extends Error {
  override readonly name = "RingChangeError";
  readonly code = "LOOM_RING_CHANGE" as const;
  readonly outcome: Outcome;
  constructor(message: string, options?: LoomErrorOptions) {
    super(message, causeOf(options));
    this.outcome = options?.outcome ?? "not-applied";
  }
}

/** A directory is open elsewhere: names it and, where known, the process that holds it. */
export class LockedError extends Error {
  override readonly name = "LockedError";
  readonly code = "LOOM_LOCKED" as const;
  readonly outcome: Outcome = "not-applied";
  readonly path: string;
  /** The holder's process id, when its lock file names one. */
  readonly pid: number | undefined;
  constructor(message: string, path: string, pid?: number) {
    super(message);
    this.path = path;
    this.pid = pid;
  }
}

export class IoError extends Error {
  override readonly name = "IoError";
  readonly code = "LOOM_IO" as const;
  readonly outcome: Outcome;
  readonly path: string;
  constructor(message: string, path: string, options?: LoomErrorOptions) {
    super(message, causeOf(options));
    this.path = path;
    this.outcome = options?.outcome ?? "unknown";
  }
}

/** Data read back from disk failed a checksum or a format check. Names the file and byte offset. */
export class CorruptionError extends Error {
  override readonly name = "CorruptionError";
  readonly code = "LOOM_CORRUPTION" as const;
  readonly outcome: Outcome;
  readonly path: string;
  readonly offset: number;
  constructor(detail: string, path: string, offset: number, options?: LoomErrorOptions) {
    super(`corruption in ${path} at offset ${offset}: ${detail}`, causeOf(options));
    this.path = path;
    this.offset = offset;
    this.outcome = options?.outcome ?? "unknown";
  }
}

/** A request that could not reach its quorum: says how many of the required replicas answered. */
export class QuorumError extends Error {
  override readonly name = "QuorumError";
  readonly code = "LOOM_QUORUM" as const;
  readonly outcome: Outcome;
  /** Replicas that acknowledged (a write) or answered (a read) before the request gave up. */
  readonly acknowledged: number;
  /** W for a write, R for a read. */
  readonly required: number;
  /** Replicas the request addressed (N). */
  readonly replicas: number;

  /** Message: `put failed: 1 of 3 replicas acknowledged, 2 required`. */
  constructor(options: { action: string; acknowledged: number; required: number; replicas: number; outcome?: Outcome; detail?: string }) {
    const { action, acknowledged, required, replicas } = options;
    super(`${action} failed: ${acknowledged} of ${replicas} replicas acknowledged, ${required} required${options.detail ? ` (${options.detail})` : ""}`);
    this.acknowledged = acknowledged;
    this.required = required;
    this.replicas = replicas;
    this.outcome = options.outcome ?? "unknown";
  }
}

export class TooManySiblingsError extends Error {
  override readonly name = "TooManySiblingsError";
  readonly code = "LOOM_TOO_MANY_SIBLINGS" as const;
  readonly outcome: Outcome;
  readonly siblings: number;
  readonly siblingsMax: number;

  /** Message: `put failed: key would have 65 siblings, limit is 64`. */
  constructor(action: string, failure: { readonly siblings: number; readonly siblingsMax: number }, options?: LoomErrorOptions) {
    super(`${action} failed: key would have ${failure.siblings} siblings, limit is ${failure.siblingsMax}`, causeOf(options));
    this.siblings = failure.siblings;
    this.siblingsMax = failure.siblingsMax;
    this.outcome = options?.outcome ?? "not-applied";
  }
}

/** Describes a value for an error message without dumping large payloads. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value === "string") return value.length > 40 ? `a string of length ${value.length}` : JSON.stringify(value);
  if (value instanceof Uint8Array) return `a Uint8Array of ${value.byteLength} bytes`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === "object") return `an object (${Object.prototype.toString.call(value)})`;
  if (typeof value === "bigint") return `bigint ${String(value)}n`;
  if (typeof value === "symbol") return `a symbol`;
  if (typeof value === "function") return "a function";
  return `${typeof value} ${String(value)}`;
}
