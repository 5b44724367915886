/**
 * Request deadlines for the real-thread tests. A test that is not about deadlines passes
 * GENEROUS_REQUEST_TIMEOUT_MS to its cluster (requestTimeoutMs) rather than rely on the default
 * (1 s today, to be raised): many requests issued at once on a loaded 2-core machine can take
 * longer than a second to gather their quorum, and a refusal the test expects "at once" must not
 * be mistaken for a timeout. A test that checks that a request times out passes its own short
 * timeoutMs.
 */
export const GENEROUS_REQUEST_TIMEOUT_MS = 15_000;
