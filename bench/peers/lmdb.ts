/**
 * lmdb-js behind the benchmark interface, with its default write path: puts issued in one event
 * turn are committed together by lmdb's own write thread (eventTurnBatching), and overlappingSync
 * (default on Linux) fsyncs each commit after it became visible. The promise resolves on commit.
 */
import { open, type RootDatabase } from "lmdb";
import type { BenchPeer, BenchRecord, PeerOpenOptions } from "./peer.ts";
import { packageVersion } from "./package_version.ts";

export async function openLmdbPeer(options: PeerOpenOptions): Promise<LmdbPeer> {
  const db = open<Uint8Array, Uint8Array>({ path: options.directory, keyEncoding: "binary", encoding: "binary" });
  return new LmdbPeer(db);
}

export class LmdbPeer implements BenchPeer {
  readonly name = "lmdb-js";
  readonly version = packageVersion("lmdb");
  readonly durability =
    "defaults (overlappingSync: true, noSync: false, commitDelay: 0): writes of one event turn share one transaction committed by lmdb's write thread; the promise resolves when the commit is visible, the fsync follows asynchronously (db.flushed); survives a process crash, power loss only once flushed";
  readonly readPath = "db.get (synchronous, memory-mapped B+tree; binary encoding returns a copy)";
  readonly #db: RootDatabase<Uint8Array, Uint8Array>;

  constructor(db: RootDatabase<Uint8Array, Uint8Array>) {
    this.#db = db;
  }

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    await this.#db.put(key, value);
  }

  async writeBatch(records: readonly BenchRecord[]): Promise<void> {
    const db = this.#db;
    await db.batch(() => {
      for (let i = 0; i < records.length; i++) {
        const record = records[i]!;
        db.put(record.key, record.value);
      }
    });
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.#db.get(key);
  }

  async settle(): Promise<void> {
    await this.#db.flushed;
  }

  describe(): Record<string, string | number> {
    const stats = this.#db.getStats() as { entryCount?: number; treeDepth?: number; mapSize?: number };
    return { entries: stats.entryCount ?? "?", "tree depth": stats.treeDepth ?? "?" };
  }

  close(): Promise<void> {
    return this.#db.close();
  }
}
