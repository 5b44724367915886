/**
 * Point reads: the records of one key from the active memtable, the frozen memtables (newest
 * first), then the tables newest first, each memtable or table skipped when its Bloom filter says
 * no (the key is hashed once for all the filters); a put record ends the search, merge records accumulate,
 * and the merge rule resolves what was found.
 * Synchronous (a table read may block on a pread).
 */
import { ClosedError } from "../util/errors.ts";
import { keyHashes, type KeyHashes } from "./bloom.ts";
import { limits } from "../util/limits.ts";
import { RecordKind, type StoredRecord } from "./record.ts";
import { resolveRecords } from "./record_resolution.ts";
import type { StoreState } from "./store_state.ts";
import { toKeyBytes, type KeyInput } from "./store_input.ts";
import type { Version } from "./version_set_format.ts";

/** The versions of `key` (tombstones included), newest record first; [] when there are none. */
export function lookup(store: StoreState, key: KeyInput): Version[] {
  const keyBytes = toKeyBytes("get", key, limits.storeKeyBytesMax);
  if (store.state === "closed") throw new ClosedError("get failed: store is closed");
  const records = collect(store, keyBytes);
  if (records.length === 0) return [];
  return resolveRecords(records, store.rule, true).versions;
}

/** The key's filter hashes (memtables and tables hash alike), reused by every lookup (lookups are synchronous, one at a time). */
const hashes: KeyHashes = { first: 0, second: 0 };

/** Records of `key` from every source, newest first, stopping at the first put record. */
function collect(store: StoreState, key: Uint8Array): StoredRecord[] {
  const collected: StoredRecord[] = [];
  const take = (records: readonly StoredRecord[]): boolean => {
    for (const record of records) {
      collected.push(record);
      if (record.kind === RecordKind.put) return true;
    }
    return false;
  };
  keyHashes(key, hashes); // once for every memtable's and table's filter
  const active = store.active.memtable;
  if (active.mayContain(hashes) && take(active.recordsFor(key, true))) return collected;
  for (const slot of store.frozen) if (slot.memtable.mayContain(hashes) && take(slot.memtable.recordsFor(key, true))) return collected;
  for (const table of store.tables) {
    if (!table.reader.mayContainHashes(hashes)) {
      store.bloomSkips++;
      continue;
    }
    if (take(table.reader.recordsFor(key, true))) return collected;
  }
  return collected;
}
