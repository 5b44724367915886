/** Assertion helpers shared by the suites. */

/** uvu's `throws` calls a function argument as a predicate: wrap an error class in one. */
export function isError(type: abstract new (...args: never[]) => Error): (error: unknown) => boolean {
  return (error) => error instanceof type;
}

/** Asserts that `call` throws or rejects with an error whose stable `code` is `code`. */
export async function rejectsWithCode(call: () => unknown, code: string, message?: RegExp): Promise<void> {
  let failure: unknown;
  try {
    await call();
  } catch (error) {
    failure = error;
  }
  if (failure === undefined) throw new Error(`expected an error with code ${code}, but the call succeeded`);
  const actual = (failure as { code?: unknown }).code;
  if (actual !== code) throw new Error(`expected code ${code}, got ${String(actual)}: ${String(failure)}`);
  if (message && !message.test(String((failure as Error).message))) {
    throw new Error(`expected a message matching ${message}, got: ${String((failure as Error).message)}`);
  }
}
