/** Opening stores for tests: on the simulated file system (inline jobs, virtual clock) or a real temp directory. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FileSystem } from "../../src/io/file_system.ts";
import { SimClock } from "../../src/io/sim_clock.ts";
import { InlineStorageJobs } from "../../src/storage/storage_jobs.ts";
import { Store, type StoreOpenOptions } from "../../src/storage/store.ts";
import type { Clock } from "../../src/io/clock.ts";

export const STORE_DIRECTORY = "/store";

export type StoreOverrides = Partial<Omit<StoreOpenOptions, "fs" | "clock" | "jobs" | "directory">>;

export function openSimStore(fs: FileSystem, overrides: StoreOverrides = {}, clock: Clock = new SimClock()): Promise<Store> {
  return Store.open({
    directory: STORE_DIRECTORY,
    fs,
    clock,
    jobs: new InlineStorageJobs(fs),
    fsync: "always",
    memtableBytes: 64 * 1024,
    ...overrides,
  });
}

export function temporaryDirectory(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `loomkv-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function bytesOf(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function textOf(bytes: Uint8Array | null | undefined): string | null {
  return bytes ? new TextDecoder().decode(bytes) : null;
}
