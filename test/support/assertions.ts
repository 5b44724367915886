/** Assertion helpers shared by the suites. */

/**
 * uvu's `throws` calls a function argument as a predicate: wrap an error class in one. Only for
 * errors that carry no stable `code` (plain TypeErrors, assertion failures); for loomkv's own
 * errors use `rejectsWithCode`.
 */
export function isError(type: abstract new (...args: never[]) => Error): (error: unknown) => boolean {
  return (error) => error instanceof type;
}

/** An error as loomkv raises it: a stable `code`, and the fields some kinds add. */
export type CodedError = Error & { code: string; outcome?: string; path?: string; pid?: number; offset?: number; required?: number };

/**
 * Asserts that `call` throws or rejects with an error whose stable `code` is `code` (and whose
 * message matches `message`, when given); resolves with that error, for a test to check more of it.
 * The one way the suites expect a failure: a synchronous throw and a rejection both count.
 */
export async function rejectsWithCode(call: () => unknown, code: string, message?: RegExp): Promise<CodedError> {
  let failure: unknown;
  let failed = false;
  try {
    await call();
  } catch (error) {
    failure = error;
    failed = true;
  }
  if (!failed) throw new Error(`expected an error with code ${code}, but the call succeeded`);
  const actual = (failure as { code?: unknown } | null | undefined)?.code;
  if (actual !== code) throw new Error(`expected code ${code}, got ${String(actual)}: ${String(failure)}`);
  if (message && !message.test(String((failure as Error).message))) {
    throw new Error(`expected a message matching ${message}, got: ${String((failure as Error).message)}`);
  }
  return failure as CodedError;
}
