/**
 * Temporary directories of the systems a bench suite measures, removed when the suite is done
 * with each, and all at once by `removeBenchDirectories` when the run is interrupted (a signal).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const liveDirectories = new Set<string>();

/** Removes every directory still in use (after a signal). */
export function removeBenchDirectories(): void {
  for (const directory of liveDirectories) rmSync(directory, { recursive: true, force: true });
  liveDirectories.clear();
}

/** A fresh directory named after `name`, and the cleanup that removes it. */
export function temporaryDirectory(name: string): { directory: string; cleanup: () => void } {
  const directory = mkdtempSync(join(tmpdir(), `loomkv-bench-${name}-`));
  liveDirectories.add(directory);
  return {
    directory,
    cleanup: () => {
      rmSync(directory, { recursive: true, force: true });
      liveDirectories.delete(directory);
    },
  };
}
