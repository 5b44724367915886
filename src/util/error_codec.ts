/**
 * The one codec for errors that cross a thread boundary (node worker to main thread, pool job to
 * node, worker start-up failures). Structured clone keeps only `name`, `message` and `stack` of an
 * Error, and comlink keeps less; `encodeError` turns any thrown value into plain data that
 * survives both, and `decodeError` rebuilds the exported class with its code, outcome, fields and
 * exact message, so `instanceof` works on the caller's side of every port.
 */
import {
  BusyError,
  ClosedError,
  CorruptionError,
  IoError,
  LockedError,
  LoomRangeError,
  LoomTypeError,
  QuorumError,
  RingChangeError,
  TooManySiblingsError,
  type Outcome,
} from "./errors.ts";

/** An error as plain, structured-cloneable data. */
export interface PlainError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly outcome?: Outcome;
  readonly path?: string;
  readonly offset?: number;
  readonly pid?: number;
  readonly acknowledged?: number;
  readonly required?: number;
  readonly replicas?: number;
  readonly siblings?: number;
  readonly siblingsMax?: number;
}

const numberFields = ["offset", "pid", "acknowledged", "required", "replicas", "siblings", "siblingsMax"] as const;

export function encodeError(error: unknown): PlainError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const fields = error as unknown as Record<string, unknown>;
  const plain: Record<string, unknown> = { name: error.name, message: error.message };
  if (typeof fields["code"] === "string") plain["code"] = fields["code"];
  if (fields["outcome"] === "not-applied" || fields["outcome"] === "unknown") plain["outcome"] = fields["outcome"];
  if (typeof fields["path"] === "string") plain["path"] = fields["path"];
  for (const name of numberFields) if (typeof fields[name] === "number") plain[name] = fields[name];
  return plain as unknown as PlainError;
}

/** The error `plain` describes, as the exported class of its code (a plain Error for other codes). */
export function decodeError(plain: PlainError): Error {
  const outcome = plain.outcome === undefined ? {} : { outcome: plain.outcome };
  let error: Error;
  switch (plain.code) {
    case "LOOM_INVALID_ARGUMENT":
      error = new LoomTypeError(plain.message, outcome);
      break;
    case "LOOM_OUT_OF_RANGE":
      error = new LoomRangeError(plain.message, outcome);
      break;
    case "LOOM_CLOSED":
      error = new ClosedError(plain.message, outcome);
      break;
    case "LOOM_BUSY":
      error = new BusyError(plain.message, outcome);
      break;
    case "LOOM_RING_CHANGE":
      error = new RingChangeError(plain.message, outcome);
      break;
    case "LOOM_LOCKED":
      error = new LockedError(plain.message, plain.path ?? "", plain.pid);
      break;
    case "LOOM_IO":
      error = new IoError(plain.message, plain.path ?? "", outcome);
      break;
    case "LOOM_CORRUPTION":
      error = new CorruptionError("", plain.path ?? "", plain.offset ?? 0, outcome);
      break;
    case "LOOM_QUORUM":
      error = new QuorumError({
        action: "request",
        acknowledged: plain.acknowledged ?? 0,
        required: plain.required ?? 0,
        replicas: plain.replicas ?? 0,
        ...outcome,
      });
      break;
    case "LOOM_TOO_MANY_SIBLINGS":
      error = new TooManySiblingsError("request", { siblings: plain.siblings ?? 0, siblingsMax: plain.siblingsMax ?? 0 }, outcome);
      break;
    default:
      // A bug's error (a broken invariant) or a platform error: keep what it said.
      error = new Error(plain.message);
      error.name = plain.name;
      if (plain.code !== undefined) Object.assign(error, { code: plain.code });
      if (plain.path !== undefined) Object.assign(error, { path: plain.path });
      return error;
  }
  error.message = plain.message; // classes that build their own message keep the sender's words
  return error;
}
