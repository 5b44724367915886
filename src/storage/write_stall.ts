/**
 * Write stalls: a write that finds `limits.frozenMemtablesMax` memtables waiting for their flush
 * waits until a flush ends, the store closes or it fails (whoever frees it resolves every
 * `stallWaiters` entry; a stalled write that still finds no room waits again). At most
 * `limits.pendingWritesMax` writes wait at once; one more is refused with BusyError.
 */
import { BusyError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import type { StoreState } from "./store_state.ts";

/** Resolves once the store has room for a write, or is no longer open, or has failed. */
export function stall(store: StoreState): Promise<void> {
  if (store.stalledWrites >= limits.pendingWritesMax) {
    throw new BusyError(`write failed: ${store.stalledWrites} writes wait for a memtable flush, limit is ${limits.pendingWritesMax}`);
  }
  store.stalledWrites++;
  return new Promise<void>((resolve) => store.stallWaiters.push(resolve)).then(async () => {
    store.stalledWrites--;
    if (store.state === "open" && !store.failure && store.frozen.length >= limits.frozenMemtablesMax) await stall(store);
  });
}
