/**
 * Memtable rotation: the active memtable is frozen when a batch would not fit it (or when a flush
 * or a scan needs every record in an immutable memtable). The pending write group commits first;
 * a new memtable (reusing the spare arena of the last flush, if any) then starts with a new
 * commit log, and the frozen one (unless empty) is queued for its flush. A store closed or failed
 * by then does not rotate: it throws as a write would.
 */
import type { BatchEntry } from "./log_batch.ts";
import { Memtable } from "./memtable.ts";
import { scheduleBackgroundWork } from "./background_work.ts";
import type { StoreState } from "./store_state.ts";
import { commitGroup } from "./write_group.ts";

/** Freezes the active memtable if `entries` would not fit in it. */
export function ensureRoom(store: StoreState, entries: readonly BatchEntry[]): void {
  let needed = 0;
  for (const entry of entries) needed += Memtable.recordBytesMax(entry.key.length, entry.payload.length);
  const memtable = store.active.memtable;
  if (memtable.arenaBytes - memtable.usedBytes >= needed) return;
  rotate(store);
}

/** Freezes the active memtable and starts a new one with a new log. */
export function rotate(store: StoreState): void {
  if (store.commitTimer !== undefined) {
    store.clock.clearTimer(store.commitTimer);
    store.commitTimer = undefined;
  }
  commitGroup(store);
  store.checkWritable("write");
  const old = store.active;
  old.memtable.freeze();
  const logNumber = store.nextFileNumber++;
  const newLog = store.createLog(logNumber);
  store.log.writer.close();
  store.log = newLog;
  const memtable = Memtable.create({ arenaBytes: store.config.memtableBytes, reuse: store.spareArena });
  store.spareArena = undefined;
  store.active = { memtable, logNumberMin: logNumber, references: 0 };
  if (old.memtable.entryCount > 0) store.frozen.unshift(old);
  scheduleBackgroundWork(store);
}
