/**
 * The one place a piscina pool is made. Every pool of loomkv goes through `createJobPool`, so a
 * setting every pool needs is set once (a test checks that no other file constructs Piscina).
 *
 * Why `--no-experimental-require-module`: piscina loads its task file with `require()` first and
 * falls back to `import()`. On Node 20.19+ `require()` of an ES module takes Node's require(esm)
 * path, which, when several pool threads load the same module graph while it is still being
 * instantiated, can abort the whole process with `FATAL ERROR: v8::Module::IsGraphAsync must be
 * used on an instantiated module` (seen in about one run in eight of a pool-heavy test file). With
 * require(esm) off in the pool's threads, `require()` of the ESM task file throws
 * ERR_REQUIRE_ESM at once and piscina takes its `import()` path, which has no such race (0 crashes
 * in 50 runs: `node scripts/soak_pool.mjs`). Deno ignores Node's flags: its workers always import.
 */
import process from "node:process";
import { Worker } from "node:worker_threads";
import { Piscina } from "piscina";

export interface JobPoolOptions {
  /** The task file's URL (see worker_file.ts). */
  readonly filename: URL;
  readonly threads: number;
  /** Ms an idle thread lives above `threads` (none here: min = max). */
  readonly idleTimeoutMs: number;
  readonly resourceLimits?: { readonly maxOldGenerationSizeMb?: number; readonly maxYoungGenerationSizeMb?: number };
}

/** Flags every pool thread starts with, on top of the process's own. */
export const jobPoolExecArgv: readonly string[] = requireModuleFlag();

function requireModuleFlag(): string[] {
  // Deno's worker_threads take no Node flags; Node before 20.17 lacks the flag (and require(esm)).
  if ("Deno" in globalThis) return [];
  return process.allowedNodeEnvironmentFlags.has("--no-experimental-require-module") ? ["--no-experimental-require-module"] : [];
}

export function createJobPool(options: JobPoolOptions): Piscina {
  return new Piscina({
    filename: options.filename.href,
    minThreads: options.threads,
    maxThreads: options.threads,
    idleTimeout: options.idleTimeoutMs,
    execArgv: [...workerExecArgv(), ...jobPoolExecArgv],
    ...(options.resourceLimits === undefined ? {} : { resourceLimits: { ...options.resourceLimits } }),
  });
}

let inherited: string[] | undefined;

/**
 * The process's own flags that a worker thread accepts. Setting `execArgv` replaces what a worker
 * would inherit, and Node refuses V8 and process-wide flags there (`--expose-gc`,
 * `--max-old-space-size`: ERR_WORKER_INVALID_EXEC_ARGV), so each flag is tried once on a worker
 * that exits at once, and kept only if accepted. Usually there are none to try.
 */
function workerExecArgv(): string[] {
  if (inherited) return inherited;
  inherited = [];
  if ("Deno" in globalThis) return inherited;
  for (const flag of process.execArgv) {
    try {
      const probe = new Worker("", { eval: true, execArgv: [flag] });
      void probe.terminate();
      inherited.push(flag);
    } catch {
      // refused for workers: pool threads run without it
    }
  }
  return inherited;
}
