/**
 * `npm run demo:storage`: the storage engine alone, on a temporary directory: writes 200k keys, reads some back, flushes and compacts, reopens, prints
 * stats, and removes the directory.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../src/runtime/open_store.ts";

const directory = mkdtempSync(join(tmpdir(), "loomkv-demo-"));
const version = new Uint8Array([0, 0, 0, 1]);
const keys = 200_000;
const value = "v".repeat(100);

try {
  let store = await openStore({ directory, memtableBytes: 8 * 1024 * 1024 });
  console.log(`loomkv storage demo in ${directory}`);
  let started = performance.now();
  const inFlight = new Set<Promise<void>>();
  for (let batch = 0; batch < keys / 100; batch++) {
    const operations = [];
    for (let i = 0; i < 100; i++) {
      operations.push({ key: `key:${String(batch * 100 + i).padStart(8, "0")}`, kind: "put" as const, versions: [{ version, value }] });
    }
    const write = store.write(operations).finally(() => inFlight.delete(write));
    inFlight.add(write);
    if (inFlight.size >= 16) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  console.log(`wrote ${keys} keys in batches of 100, 16 batches in flight (fsync "batch") in ${(performance.now() - started).toFixed(0)} ms`);
  started = performance.now();
  let found = 0;
  for (let i = 0; i < keys; i += 7) if (store.get(`key:${String(i).padStart(8, "0")}`).length === 1) found++;
  console.log(`read back ${found} keys in ${(performance.now() - started).toFixed(0)} ms; absent key gives ${JSON.stringify(store.get("nope"))}`);
  await store.compact();
  await store.close();
  store = await openStore({ directory });
  const stats = store.stats();
  console.log(`after compaction and reopen: ${stats.tables.length} table(s), ${(stats.tableBytes / 1e6).toFixed(1)} MB, key:00000042 = ${new TextDecoder().decode(store.get("key:00000042")[0]!.value!).slice(0, 10)}…`);
  console.log(JSON.stringify(stats, null, 2));
  await store.close();
} finally {
  rmSync(directory, { recursive: true, force: true });
}
