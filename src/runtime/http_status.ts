/**
 * How the HTTP front answers a failure: the status for each error code, the JSON body
 * `{ error, message, outcome }`, and the headers that go with it. Pure.
 *
 * | error code                                   | status | notes                                   |
 * |----------------------------------------------|--------|-----------------------------------------|
 * | LOOM_INVALID_ARGUMENT, LOOM_OUT_OF_RANGE     | 400    | bad key, option, context, JSON, setting |
 * | LOOM_TOO_MANY_SIBLINGS                       | 409    | resolve the siblings (write with a read's context), then retry |
 * | LOOM_QUORUM, LOOM_BUSY                       | 503    | Retry-After: 1                          |
 * | LOOM_CLOSED                                  | 503    | the cluster is shutting down: no Retry-After |
 * | LOOM_RING_CHANGE                             | 503    | a node the change needs is down         |
 * | LOOM_IO, LOOM_CORRUPTION, LOOM_LOCKED, other | 500    | other: error `INTERNAL`, outcome unknown |
 *
 * The front's own refusals are HttpError: 404 `NOT_FOUND`, 405 `METHOD_NOT_ALLOWED` (with Allow),
 * 413 `LOOM_OUT_OF_RANGE` (then the connection closes); all "not-applied". Requests the HTTP
 * parser refuses are answered by http_front.ts in the same form: 431 `LOOM_OUT_OF_RANGE`, 408
 * `REQUEST_TIMEOUT`, 400 `LOOM_INVALID_ARGUMENT`. Every error answer carries the outcome
 * in the body and in the X-Loom-Outcome header: "not-applied" (nothing changed; safe to retry)
 * or "unknown" (a write may have reached some replicas).
 */
import type { Outcome } from "../util/errors.ts";

/** A refusal by the HTTP front itself, before the cluster saw the request. */
export class HttpError extends Error {
  override readonly name = "HttpError";
  readonly status: number;
  readonly code: string;
  readonly outcome: Outcome = "not-applied";
  readonly headers: Readonly<Record<string, string>>;
  /** The connection closes after the answer (a body or header block past its limit). */
  readonly close: boolean;

  constructor(options: { status: number; code: string; message: string; headers?: Record<string, string>; close?: boolean }) {
    super(options.message);
    this.status = options.status;
    this.code = options.code;
    this.headers = options.headers ?? {};
    this.close = options.close ?? false;
  }
}

export interface ErrorBody {
  readonly error: string;
  readonly message: string;
  readonly outcome: Outcome;
}

export interface ErrorAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: ErrorBody;
  readonly close: boolean;
}

const statusByCode: Readonly<Record<string, number>> = {
  LOOM_INVALID_ARGUMENT: 400,
  LOOM_OUT_OF_RANGE: 400,
  LOOM_TOO_MANY_SIBLINGS: 409,
  LOOM_QUORUM: 503,
  LOOM_BUSY: 503,
  LOOM_CLOSED: 503,
  LOOM_RING_CHANGE: 503,
  LOOM_IO: 500,
  LOOM_CORRUPTION: 500,
  LOOM_LOCKED: 500,
};

/** Codes whose condition passes by itself (nodes restart, queues drain): the answer says when to retry. */
const retryAfterSeconds: Readonly<Record<string, number>> = { LOOM_QUORUM: 1, LOOM_BUSY: 1 };

/** The answer to `error`, whatever was thrown. */
export function errorAnswer(error: unknown): ErrorAnswer {
  if (error instanceof HttpError) {
    const body = { error: error.code, message: error.message, outcome: error.outcome };
    return { status: error.status, headers: { ...error.headers, "X-Loom-Outcome": body.outcome }, body, close: error.close };
  }
  const fields = (typeof error === "object" && error !== null ? error : {}) as { code?: unknown; message?: unknown; outcome?: unknown };
  const code = typeof fields.code === "string" ? fields.code : undefined;
  const status = code === undefined ? undefined : statusByCode[code];
  const message = typeof fields.message === "string" ? fields.message : String(error);
  if (code === undefined || status === undefined) {
    // Not an error loomkv raises on purpose: it may have struck after a write was sent.
    const body: ErrorBody = { error: "INTERNAL", message: `internal error: ${message}`, outcome: "unknown" };
    return { status: 500, headers: { "X-Loom-Outcome": body.outcome }, body, close: false };
  }
  const outcome: Outcome = fields.outcome === "not-applied" ? "not-applied" : "unknown";
  const headers: Record<string, string> = { "X-Loom-Outcome": outcome };
  const retryAfter = retryAfterSeconds[code];
  if (retryAfter !== undefined) headers["Retry-After"] = String(retryAfter);
  return { status, headers, body: { error: code, message, outcome }, close: false };
}
