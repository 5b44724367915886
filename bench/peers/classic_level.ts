/**
 * classic-level (LevelDB) behind the benchmark interface. Writes use `sync: false`; reads use
 * classic-level 3's synchronous `getSync`, so all three systems are compared on synchronous gets.
 */
import { ClassicLevel } from "classic-level";
import type { BenchPeer, BenchRecord, PeerOpenOptions } from "./peer.ts";
import { packageVersion } from "./package_version.ts";

const WRITE_OPTIONS = { sync: false } as const;

export async function openClassicLevelPeer(options: PeerOpenOptions): Promise<ClassicLevelPeer> {
  const cacheSize = options.cacheBytes ?? 8 * 2 ** 20;
  const db = new ClassicLevel<Uint8Array, Uint8Array>(options.directory, { keyEncoding: "view", valueEncoding: "view", cacheSize });
  await db.open();
  return new ClassicLevelPeer(db, cacheSize);
}

export class ClassicLevelPeer implements BenchPeer {
  readonly name = "classic-level";
  readonly version = packageVersion("classic-level");
  readonly durability: string;
  readonly readPath = "db.getSync (classic-level 3, synchronous)";
  readonly #db: ClassicLevel<Uint8Array, Uint8Array>;

  constructor(db: ClassicLevel<Uint8Array, Uint8Array>, cacheSize: number) {
    this.#db = db;
    this.durability = `sync: false, block cache ${cacheSize / 2 ** 20} MiB (defaults otherwise: 4 MiB write buffer, Snappy): a write resolves once LevelDB appended it to its log with write(2), no fsync; survives a process crash, not power loss`;
  }

  put(key: Uint8Array, value: Uint8Array): Promise<void> {
    return this.#db.put(key, value, WRITE_OPTIONS);
  }

  writeBatch(records: readonly BenchRecord[]): Promise<void> {
    const operations = new Array<{ type: "put"; key: Uint8Array; value: Uint8Array }>(records.length);
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      operations[i] = { type: "put", key: record.key, value: record.value };
    }
    return this.#db.batch(operations, WRITE_OPTIONS);
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.#db.getSync(key);
  }

  async settle(): Promise<void> {
    // LevelDB compacts in its own background thread; there is nothing to wait for.
  }

  describe(): Record<string, string | number> {
    const levels: string[] = [];
    for (let level = 0; level < 7; level++) levels.push(this.#db.getProperty(`leveldb.num-files-at-level${level}`));
    while (levels.length > 1 && levels[levels.length - 1] === "0") levels.pop();
    return { "table files per level (L0/L1/...)": levels.join("/") };
  }

  close(): Promise<void> {
    return this.#db.close();
  }
}
