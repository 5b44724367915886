/**
 * loomkv behind the benchmark interface: one Store opened on the real disk with `openStore`
 * (piscina pool for flushes and compactions), driven from the calling thread.
 */
import type { Store, WriteOperation } from "../../src/storage/store.ts";
import type { FsyncPolicy } from "../../src/storage/store_config.ts";
import { openStore } from "../../src/runtime/open_store.ts";
import type { BenchPeer, BenchRecord, PeerOpenOptions } from "./peer.ts";

export interface LoomPeerOptions extends PeerOpenOptions {
  readonly fsync: FsyncPolicy;
  readonly memtableBytes: number;
  /** Name shown in the report; defaults to "loomkv". */
  readonly name?: string;
}

/** Every record carries one version with an empty version blob, so stored bytes match the peers'. */
const EMPTY_VERSION = new Uint8Array(0);

const DURABILITY: Record<FsyncPolicy, string> = {
  batch: "fsync \"batch\" (group commit: a write resolves after the fdatasync it shares with the writes that arrived while the previous one ran); survives power loss",
  always: "fsync \"always\": a write resolves after the fdatasync of its event-loop turn; survives power loss",
  never: "fsync \"never\": a write resolves once written to the OS (write(2), no fsync); survives a process crash, not power loss",
};

export async function openLoomPeer(options: LoomPeerOptions): Promise<LoomPeer> {
  const store = await openStore({
    directory: options.directory,
    fsync: options.fsync,
    memtableBytes: options.memtableBytes,
    ...(options.cacheBytes === undefined ? {} : { blockCacheBytes: options.cacheBytes }),
  });
  return new LoomPeer(store, options.name ?? "loomkv");
}

export class LoomPeer implements BenchPeer {
  readonly name: string;
  readonly version = "workspace";
  readonly durability: string;
  readonly readPath = "Store.get (synchronous; memtable, then Bloom filter + block cache / pread per table)";
  readonly store: Store;

  constructor(store: Store, name: string) {
    this.store = store;
    this.name = name;
    this.durability = DURABILITY[store.config.fsync];
  }

  put(key: Uint8Array, value: Uint8Array): Promise<void> {
    return this.store.put(key, [{ version: EMPTY_VERSION, value }]);
  }

  writeBatch(records: readonly BenchRecord[]): Promise<void> {
    const operations: WriteOperation[] = new Array(records.length);
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      operations[i] = { key: record.key, kind: "put", versions: [{ version: EMPTY_VERSION, value: record.value }] };
    }
    return this.store.write(operations);
  }

  get(key: Uint8Array): Uint8Array | undefined {
    const versions = this.store.get(key);
    return versions[0]?.value ?? undefined;
  }

  async settle(): Promise<void> {
    await this.store.flush();
    await this.store.idle();
  }

  describe(): Record<string, string | number> {
    const stats = this.store.stats();
    return {
      tables: stats.tables.length,
      "table records": stats.tables.reduce((sum, table) => sum + table.records, 0),
      "table MiB": Number((stats.tableBytes / 2 ** 20).toFixed(1)),
      "memtable entries": stats.memtable.entries,
      "memtable MiB used": Number((stats.memtable.usedBytes / 2 ** 20).toFixed(1)),
      "frozen memtables": stats.frozenMemtables,
      flushes: stats.flushes,
      compactions: stats.compactions,
      "log syncs": stats.logSyncs,
      "block cache hit %": percent(stats.blockCache.hits, stats.blockCache.hits + stats.blockCache.misses),
    };
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

function percent(part: number, whole: number): number {
  return whole === 0 ? 0 : Number(((100 * part) / whole).toFixed(1));
}
