/**
 * Disk faults on purpose: a FileSystem that forwards to another one (the real disk or the
 * simulated one) until a fault is switched on, then fails the operations that fault breaks, with
 * the IoError a real disk would cause. It is fault injection around the real thing, not a mock:
 * everything that does not fail reaches the wrapped file system unchanged.
 *
 * - `"fsync"`: every `sync()` and `syncDirectory()` fails (EIO), as after a disk error. A store
 *   whose log sync fails rejects the writes of that group and refuses every later write.
 * - `"full"`: every append, and every creation of a file, fails (ENOSPC), as on a full disk.
 *
 * Faults apply to handles opened before the switch too. `setFault(null)` clears it; a store that
 * saw a failure stays failed until it is reopened (its files' tails are unknown).
 */
import { IoError } from "../util/errors.ts";
import type { FileSystem } from "./file_system.ts";
import { GatedFileSystem, type FileOperation } from "./gated_file_system.ts";

export type DiskFault = "fsync" | "full";

export const diskFaults: readonly DiskFault[] = ["fsync", "full"];

export class FaultyFileSystem extends GatedFileSystem {
  #fault: DiskFault | null = null;
  /** Operations failed on purpose since the start. */
  injected = 0;

  constructor(inner: FileSystem) {
    super(inner, (operation, path) => this.#check(operation, path));
  }

  get fault(): DiskFault | null {
    return this.#fault;
  }

  setFault(fault: DiskFault | null): void {
    this.#fault = fault;
  }

  /** Throws the injected failure for `operation` on `path` when the current fault breaks it. */
  #check(operation: FileOperation, path: string): void {
    const fault = this.#fault;
    if (fault === "fsync" && operation === "sync") {
      this.injected++;
      throw new IoError(`sync failed: EIO: i/o error (injected disk fault "fsync")`, path);
    }
    if (fault === "full" && (operation === "append" || operation === "create")) {
      this.injected++;
      throw new IoError(`${operation} failed: ENOSPC: no space left on device (injected disk fault "full")`, path);
    }
  }
}
