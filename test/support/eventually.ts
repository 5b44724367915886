/**
 * Waiting for a condition instead of sleeping: retries `check` (which throws or returns false
 * while the condition does not hold yet) until it passes, then returns its result. Fails with the
 * last failure once `timeoutMs` has passed: a generous bound for a slow machine, never a claim
 * about speed.
 */
import { setTimeout as sleep } from "node:timers/promises";

export async function eventually<T>(check: () => T | Promise<T>, options: { timeoutMs?: number; what?: string } = {}): Promise<Exclude<T, false>> {
  const deadline = performance.now() + (options.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const result = await check();
      if (result !== false) return result as Exclude<T, false>;
      last = new Error(`${options.what ?? "condition"} does not hold yet`);
    } catch (error) {
      last = error;
    }
    if (performance.now() > deadline) throw last;
    await sleep(5);
  }
}
