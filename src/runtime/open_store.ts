/**
 * Opens a storage engine on the real disk: RealFileSystem, RealClock, and a piscina pool for
 * flushes and compactions (owned by the store unless `jobs` is given).
 */
import { RealClock } from "../io/real_clock.ts";
import { RealFileSystem } from "../io/real_file_system.ts";
import { Store, type StoreOpenOptions } from "../storage/store.ts";
import { PiscinaStorageJobs } from "./piscina_storage_jobs.ts";

export type OpenStoreOptions = Omit<StoreOpenOptions, "fs" | "clock" | "jobs" | "ownsJobs"> &
  Partial<Pick<StoreOpenOptions, "jobs">>;

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const jobs = options.jobs ?? new PiscinaStorageJobs();
  try {
    return await Store.open({ ...options, fs: new RealFileSystem(), clock: new RealClock(), jobs, ownsJobs: options.jobs === undefined });
  } catch (error) {
    if (options.jobs === undefined) await jobs.close();
    throw error;
  }
}
