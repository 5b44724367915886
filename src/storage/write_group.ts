/**
 * Group commit. `append` gives a batch its sequence numbers, frames it into the current commit
 * log (log_writer.ts, in memory until the group commits) and inserts it into the active memtable,
 * which must have room; its promise joins the pending group. The group commits in a microtask at
 * the end of the current turn, or when the batch window closes under `fsync: "batch"` with a
 * window set (rotation and close commit it early): one flush or sync of the log for all of it,
 * then every writer of the group settles. The sync blocks the thread, so whatever arrives during
 * it forms the next group: leader/follower group commit without a fixed wait. A failed flush or sync rejects the whole group and leaves the store read-only.
 */
import { assert } from "../util/assert.ts";
import { encodeBatch, type BatchEntry } from "./log_batch.ts";
import type { StoreState } from "./store_state.ts";

/** Writes `entries` (validated, with memtable room reserved); resolves when their group commits. */
export function append(store: StoreState, entries: readonly BatchEntry[]): Promise<void> {
  const firstSequence = store.nextSequence;
  store.nextSequence += entries.length;
  store.log.writer.addRecord(encodeBatch(firstSequence, entries, store.batchWriter));
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const inserted = store.active.memtable.insert(entry.key, firstSequence + i, entry.kind, entry.payload);
    assert(inserted, "memtable room was reserved before the write");
  }
  const done = new Promise<void>((resolve, reject) => store.waiters.push({ resolve, reject }));
  scheduleCommit(store);
  return done;
}

function scheduleCommit(store: StoreState): void {
  if (store.config.fsync === "batch" && store.config.fsyncBatchWindowMs > 0) {
    store.commitTimer ??= store.clock.setTimer(store.config.fsyncBatchWindowMs, () => {
      store.commitTimer = undefined;
      commitGroup(store);
    }, { keepAlive: true });
    return;
  }
  if (store.commitScheduled) return;
  store.commitScheduled = true;
  queueMicrotask(() => {
    store.commitScheduled = false;
    commitGroup(store);
  });
}

/** Writes the pending group to the log, syncs it per policy, and settles its writers. */
export function commitGroup(store: StoreState): void {
  if (store.waiters.length === 0) return;
  const waiters = store.waiters;
  store.waiters = [];
  try {
    if (store.failure) throw store.failure;
    if (store.config.fsync === "never") store.log.writer.flush();
    else {
      store.log.writer.sync();
      store.logSyncs++;
    }
  } catch (error) {
    store.fail(error);
    for (const waiter of waiters) waiter.reject(error);
    return;
  }
  for (const waiter of waiters) waiter.resolve();
}
