/**
 * Typed operating errors. Every error loomkv raises on purpose carries a stable `code` that
 * callers can switch on; messages name the action, then a colon, then the detail
 * (`put failed: key is 70000 bytes, limit is 16384`).
 */

export type ErrorCode =
  | "LOOM_INVALID_ARGUMENT" // wrong type or malformed argument (TypeError)
  | "LOOM_OUT_OF_RANGE" // argument past a documented limit (RangeError)
  | "LOOM_CLOSED" // use after close
  | "LOOM_CORRUPTION" // checksum or format failure in a file
  | "LOOM_IO" // the file system refused an operation
  | "LOOM_BUSY" // a bounded queue is full
  | "LOOM_QUORUM" // fewer than W (or R) replicas answered in time
  | "LOOM_TOO_MANY_SIBLINGS" // a key's sibling count would pass its limit
  | "LOOM_RING_CHANGE"; // a ring change (vnodes, N, membership) could not finish; the old ring stays

export class LoomTypeError extends TypeError {
  override readonly name = "LoomTypeError";
  readonly code = "LOOM_INVALID_ARGUMENT" as const;
}

export class LoomRangeError extends RangeError {
  override readonly name = "LoomRangeError";
  readonly code = "LOOM_OUT_OF_RANGE" as const;
}

export class ClosedError extends Error {
  override readonly name = "ClosedError";
  readonly code = "LOOM_CLOSED" as const;
}

export class BusyError extends Error {
  override readonly name = "BusyError";
  readonly code = "LOOM_BUSY" as const;
}

/** Moving keys for a ring change failed (a node stopped answering); the old ring stays in force. */
export class RingChangeError extends Error {
  override readonly name = "RingChangeError";
  readonly code = "LOOM_RING_CHANGE" as const;
}

export class IoError extends Error {
  override readonly name = "IoError";
  readonly code = "LOOM_IO" as const;
  readonly path: string;
  constructor(message: string, path: string, options?: { cause?: unknown }) {
    super(message, options);
    this.path = path;
  }
}

/** Data read back from disk failed a checksum or a format check. Names the file and byte offset. */
export class CorruptionError extends Error {
  override readonly name = "CorruptionError";
  readonly code = "LOOM_CORRUPTION" as const;
  readonly path: string;
  readonly offset: number;
  constructor(detail: string, path: string, offset: number) {
    super(`corruption in ${path} at offset ${offset}: ${detail}`);
    this.path = path;
    this.offset = offset;
  }
}

/** Describes a value for an error message without dumping large payloads. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value === "string") return value.length > 40 ? `a string of length ${value.length}` : JSON.stringify(value);
  if (value instanceof Uint8Array) return `a Uint8Array of ${value.byteLength} bytes`;
  if (typeof value === "object") return `an object (${Object.prototype.toString.call(value)})`;
  return `${typeof value} ${String(value)}`;
}
