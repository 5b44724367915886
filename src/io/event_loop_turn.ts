/**
 * The simulator's one contact with the host event loop: `nextTurn()` resolves after every
 * microtask queued before it (and those they queue) has run, at a macrotask boundary. The
 * simulator calls it between two virtual events so that promise continuations (a store's group
 * commit, a session's reply) finish before virtual time moves on. Deterministic as long as nothing
 * else in the process schedules macrotasks, which the simulator does not.
 */
import { setImmediate } from "node:timers";

export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
