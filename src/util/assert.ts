/**
 * Invariant checks. A failed assertion is a bug in loomkv, never an operating condition:
 * it throws an AssertionError (always on, also in production) so that the thread crashes loudly.
 * Operating failures (bad input, corruption, IO) use the typed errors in errors.ts instead.
 */
export class AssertionError extends Error {
  override readonly name = "AssertionError";
  readonly code = "LOOM_ASSERTION";
}

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, message = "unreachable"): never {
  throw new AssertionError(`${message}: ${String(value)}`);
}
