/**
 * The storage engine alone behind the YCSB interface: one Store (`openStore`, fsync "batch", the
 * same memtable size as one cluster node) in this thread, no replication, no messages. Reads are
 * synchronous `Store.get` calls; updates are `Store.put` promises resolved by the group commit.
 * The cluster's figures divided by these are the cost of replication and of the thread hops.
 */
import type { Store } from "../../src/storage/store.ts";
import { openStore } from "../../src/runtime/open_store.ts";
import { loadValue, recordKey, type OperationStream, type YcsbData } from "../ycsb_workload.ts";
import type { YcsbPeer } from "./ycsb_peer.ts";

/** Every record carries one version with an empty version blob (as in the storage bench). */
const EMPTY_VERSION = new Uint8Array(0);
const LOAD_BATCH_RECORDS = 1000;

export async function openLoomStorePeer(options: { directory: string; memtableBytes: number }): Promise<LoomStorePeer> {
  return new LoomStorePeer(await openStore({ directory: options.directory, fsync: "batch", memtableBytes: options.memtableBytes }));
}

export class LoomStorePeer implements YcsbPeer {
  readonly name = "storage engine alone";
  readonly version = "workspace";
  readonly durability = "one Store, fsync \"batch\": an update resolves after the fdatasync it shares with the writes that queued behind the previous one (group commit, no fixed window); survives power loss, no replica";
  readonly requestPath = "Store.get (synchronous) and Store.put in this thread; no worker, no message";
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  async load(data: YcsbData): Promise<void> {
    for (let start = 0; start < data.recordCount; start += LOAD_BATCH_RECORDS) {
      const end = Math.min(data.recordCount, start + LOAD_BATCH_RECORDS);
      const operations = [];
      for (let record = start; record < end; record++) {
        operations.push({ key: recordKey(record), kind: "put" as const, versions: [{ version: EMPTY_VERSION, value: loadValue(data, record) }] });
      }
      await this.#store.write(operations);
    }
  }

  async runRound(stream: OperationStream, start: number, count: number): Promise<void> {
    const mask = stream.records.length - 1;
    const writes: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const at = (start + i) & mask;
      if (stream.reads[at] === 1) {
        this.#read(stream.keys[at]!);
      } else {
        writes.push(this.#store.put(stream.keys[at]!, [{ version: EMPTY_VERSION, value: stream.values[at]! }]));
      }
    }
    await Promise.all(writes);
  }

  #read(key: Uint8Array): void {
    if (this.#store.get(key).length === 0) throw new Error(`bench failed: ${this.name} found no value for a loaded key`);
  }

  async readOne(key: Uint8Array): Promise<void> {
    this.#read(key);
  }

  async describe(): Promise<Record<string, string | number>> {
    const stats = this.#store.stats();
    return {
      tables: stats.tables.length,
      "table MiB": Number((stats.tableBytes / 2 ** 20).toFixed(1)),
      flushes: stats.flushes,
      compactions: stats.compactions,
      "log syncs": stats.logSyncs,
    };
  }

  close(): Promise<void> {
    return this.#store.close();
  }
}
