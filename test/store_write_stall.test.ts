import { test } from "uvu";
import * as assert from "uvu/assert";
import { createPrng } from "../src/io/prng.ts";
import { SimFileSystem } from "../src/io/sim_file_system.ts";
import { type StorageJobs, InlineStorageJobs } from "../src/storage/storage_jobs.ts";
import { Store } from "../src/storage/store.ts";
import type { CompactionRequest, FlushRequest, TableSummary } from "../src/storage/table_jobs.ts";
import { SimClock } from "../src/io/sim_clock.ts";
import { limits } from "../src/util/limits.ts";
import { counterVersion } from "./fixtures/highest_counter_rule.ts";
import type { ScanRequest } from "../src/storage/scan_job.ts";
import { STORE_DIRECTORY } from "./support/store_harness.ts";

/** Inline jobs whose flushes wait until `release()`: writes pile up behind frozen memtables. */
class GatedJobs implements StorageJobs {
  readonly #inner: InlineStorageJobs;
  #open = false;
  #waiting: (() => void)[] = [];

  constructor(fs: SimFileSystem) {
    this.#inner = new InlineStorageJobs(fs);
  }

  async flush(request: FlushRequest): Promise<TableSummary> {
    if (!this.#open) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    return this.#inner.flush(request);
  }

  compact(request: CompactionRequest): Promise<TableSummary> {
    return this.#inner.compact(request);
  }

  scan(request: ScanRequest): Promise<unknown> {
    return this.#inner.scan(request);
  }

  release(): void {
    this.#open = true;
    for (const resolve of this.#waiting.splice(0)) resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const valueOf = (index: number): Uint8Array => new Uint8Array(6000).fill(index % 251);

test("writes that stall behind frozen memtables keep their own payloads", async () => {
  const fs = new SimFileSystem(createPrng(11));
  const jobs = new GatedJobs(fs);
  const store = await Store.open({ directory: STORE_DIRECTORY, fs, clock: new SimClock(), jobs, fsync: "always", memtableBytes: 64 * 1024 });
  let index = 0;
  while (store.stats().frozenMemtables < limits.frozenMemtablesMax) {
    await store.put(`key-${index}`, [{ version: counterVersion(1), value: valueOf(index) }]);
    index++;
  }
  const stalledFrom = index;
  const stalled: Promise<void>[] = [];
  for (let i = 0; i < 5; i++, index++) stalled.push(store.put(`key-${index}`, [{ version: counterVersion(1), value: valueOf(index) }]));
  await new Promise((resolve) => setTimeout(resolve, 5));
  jobs.release();
  await Promise.all(stalled);
  for (let i = 0; i < index; i++) {
    const versions = store.get(`key-${i}`);
    assert.is(versions.length, 1, `key-${i}`);
    assert.equal(versions[0]!.value, valueOf(i), `value of key-${i}${i >= stalledFrom ? " (stalled)" : ""}`);
  }
  await store.close();
});

test.run();
