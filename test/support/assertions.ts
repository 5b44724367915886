/** Assertion helpers shared by the suites. */

/** uvu's `throws` calls a function argument as a predicate: wrap an error class in one. */
export function isError(type: abstract new (...args: never[]) => Error): (error: unknown) => boolean {
  return (error) => error instanceof type;
}
